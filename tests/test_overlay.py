"""realtime.overlay: what is drawn on a frame."""
import numpy as np

from realtime.overlay import FaceLabel, draw


def test_overlay_draws_known_green_unknown_red_and_unicode():
    frame = np.zeros((240, 320, 3), np.uint8)
    draw(frame, [FaceLabel((20, 40, 60, 60), "Zo\u00eb", 0.3), FaceLabel((150, 40, 60, 60), None, 1.2)],
         fps=30.0, threshold=0.8, prompt="Name: a_")
    assert tuple(frame[70, 20]) == (0, 200, 0)     # left edge of the known box
    assert tuple(frame[70, 150]) == (0, 0, 230)    # left edge of the unknown box
