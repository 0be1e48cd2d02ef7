"""The detection policy of the live loop (realtime.detection.FaceFinder): scale cap and when a full detection runs."""
import numpy as np
import pytest


def test_full_detection_scale_is_capped_by_max_width():
    from realtime.detection import FaceFinder
    from realtime.config import apply_overrides, load_config
    config = apply_overrides(load_config(), {"detection.worker": "never", "detection.scale": 0.5,
                                             "detection.max_width": 448})
    finder = FaceFinder(config.detection)
    assert finder.full_scale(np.zeros((480, 640, 3), np.uint8)) == 0.5
    assert finder.full_scale(np.zeros((720, 1280, 3), np.uint8)) == pytest.approx(448 / 1280)
    uncapped = FaceFinder(apply_overrides(config, {"detection.max_width": 0}).detection)
    assert uncapped.full_scale(np.zeros((720, 1280, 3), np.uint8)) == 0.5


def test_losing_every_followed_face_triggers_a_full_detection_at_once():
    from realtime.detection import FaceFinder
    from realtime.config import apply_overrides, load_config
    finder = FaceFinder(apply_overrides(load_config(), {"detection.worker": "never",
                                                        "detection.every": 10}).detection)
    blank = np.zeros((240, 320, 3), np.uint8)
    assert finder.find(blank, []) == ([], True)                 # the first frame: a full detection
    assert finder.find(blank, []) == ([], False)                # nothing to follow, not due
    assert finder.find(blank, [(100, 100, 60, 60)]) == ([], True)  # the followed face is gone: look everywhere


@pytest.mark.parametrize("shape", [(1, 1), (1, 2000), (3, 3000), (3000, 2), (29, 640), (200, 100000)])
def test_frames_too_thin_for_a_face_find_none_instead_of_failing(shape):
    """A side that scales to 0 px (1x1, 2000x1, 3000x3 videos) made OpenCV's resize fail: a traceback."""
    from realtime.detection import FaceFinder
    from realtime.config import apply_overrides, load_config
    config = apply_overrides(load_config(), {"detection.worker": "never", "detection.scale": 0.5})
    finder = FaceFinder(config.detection)
    frame = np.zeros((*shape, 3), np.uint8)
    assert finder.find(frame, []) == ([], True)
    assert finder.find(frame, [(0, 0, 1, 1)]) == ([], True)
