"""realtime.overlay: what is drawn on a frame."""
import numpy as np

from realtime.overlay import FaceLabel, draw


def test_overlay_draws_known_green_unknown_red_and_unicode():
    frame = np.zeros((240, 320, 3), np.uint8)
    draw(frame, [FaceLabel((20, 40, 60, 60), "Zo\u00eb", 0.3), FaceLabel((150, 40, 60, 60), None, 1.2)],
         fps=30.0, threshold=0.8, prompt="Name: a_")
    assert tuple(frame[70, 20]) == (0, 200, 0)     # left edge of the known box
    assert tuple(frame[70, 150]) == (0, 0, 230)    # left edge of the unknown box


def yellow(frame):
    from realtime.overlay import YELLOW
    return np.all(frame == YELLOW, axis=2)


def test_a_long_name_being_typed_wraps_inside_a_512_frame_below_the_face():
    from realtime import text
    from realtime.overlay import draw_hud, wrap
    frame = np.zeros((512, 512, 3), np.uint8)
    prompt = "Name: " + "W" * 64 + "_  (Enter saves, Esc cancels)"        # the longest name the window takes
    draw_hud(frame, fps=30.0, threshold=0.66, prompt=prompt)
    rows, cols = np.nonzero(yellow(frame))
    assert len(rows) > 500                                                 # it is drawn ...
    assert cols.max() < 512 - 4 and cols.min() >= 4                      # ... inside the frame, not off its edge
    assert rows.min() > 512 * 0.6                                          # ... and below the middle, not across a face
    pieces = wrap(prompt, 20, 512 - 2 * 9)
    assert len(pieces) >= 2 and "".join(pieces).replace(" ", "") == prompt.replace(" ", "")   # nothing lost
    assert all(text.size(piece, 20)[0] <= 512 - 18 for piece in pieces)
    assert wrap("Name: Ann_", 20, 494) == ("Name: Ann_",)
    assert wrap("Enrolling Ann: look at the camera", 20, 200)[0] in ("Enrolling Ann:", "Enrolling Ann: look")  # at spaces


def test_the_prompt_and_message_stay_above_the_help_and_clear_of_each_other():
    from realtime.overlay import draw_hud
    plain = draw_hud(np.zeros((480, 640, 3), np.uint8), fps=None, threshold=None)
    both = draw_hud(np.zeros((480, 640, 3), np.uint8), fps=None, threshold=None, prompt="Name: Zoë_",
                    message="Enrollment cancelled", paused=True)
    help_top = np.nonzero(plain.any(axis=2))[0].min()                     # where the key help starts
    rows = np.nonzero(yellow(both))[0]
    assert rows.max() < help_top and rows.min() > 480 * 0.6                # PAUSED, prompt and message: between
