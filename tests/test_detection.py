"""The detection policy of the live loop (realtime.detection.FaceFinder): scale cap, when a full
detection runs, and the second look where Haar finds nobody or loses a face."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.config import apply_overrides, load_config
from realtime.detection import FaceFinder, HaarDetector, make_detector

DATA = Path(os.environ["FACES_DATA"]) if os.environ.get("FACES_DATA") else None
needs_data = pytest.mark.skipif(DATA is None, reason="FACES_DATA is not set (point it at the shared data folder)")


def finder(overrides: dict, second_look: bool = False) -> FaceFinder:
    config = apply_overrides(load_config(), {"detection.worker": "never", **overrides})
    second = make_detector("yunet", config.detection, config.alignment) if second_look else None
    return FaceFinder(config.detection, HaarDetector(config.detection), second)


def test_full_detection_scale_is_capped_by_max_width():
    capped = finder({"detection.scale": 0.5, "detection.max_width": 448})
    assert capped.full_scale(np.zeros((480, 640, 3), np.uint8)) == 0.5
    assert capped.full_scale(np.zeros((720, 1280, 3), np.uint8)) == pytest.approx(448 / 1280)
    uncapped = finder({"detection.scale": 0.5, "detection.max_width": 0})
    assert uncapped.full_scale(np.zeros((720, 1280, 3), np.uint8)) == 0.5


def test_losing_every_followed_face_triggers_a_full_detection_at_once():
    every_10 = finder({"detection.every": 10})
    blank = np.zeros((240, 320, 3), np.uint8)
    assert every_10.find(blank, []) == ([], True)                 # the first frame: a full detection
    assert every_10.find(blank, []) == ([], False)                # nothing to follow, not due
    assert every_10.find(blank, [(100, 100, 60, 60)]) == ([], True)  # the followed face is gone: look everywhere


def turned_face(frame: np.ndarray) -> np.ndarray:
    """The frame with its face turned 50 degrees in the image plane: Haar's frontal cascade misses it."""
    h, w = frame.shape[:2]
    return cv2.warpAffine(frame, cv2.getRotationMatrix2D((w / 2, h / 2), 50, 1.0), (w, h),
                          borderMode=cv2.BORDER_REPLICATE)


@needs_data
def test_the_second_look_finds_a_face_haar_misses_and_follows_it():
    capture = cv2.VideoCapture(str(DATA / "videos" / "sadtalker_WDA_KatieHill_000.mp4"))
    frames = [turned_face(capture.read()[1]) for _ in range(3)]
    capture.release()
    haar_only, with_yunet = finder({"detection.every": 10}), finder({"detection.every": 10}, second_look=True)
    assert haar_only.find(frames[0], []) == ([], True)
    boxes, full = with_yunet.find(frames[0], [])
    assert full and len(boxes) == 1 and with_yunet.second_looks == 1
    followed, full = with_yunet.find(frames[1], boxes)          # Haar cannot follow it: YuNet near its box
    assert not full and len(followed) == 1 and with_yunet.second_looks == 2


@pytest.mark.parametrize("shape", [(1, 1), (1, 2000), (3, 3000), (3000, 2), (29, 640), (200, 100000)])
@pytest.mark.parametrize("second_look", [False, True])
def test_frames_too_thin_for_a_face_find_none_instead_of_failing(shape, second_look):
    """A side that scales to 0 px (1x1, 2000x1, 3000x3 videos) made OpenCV's resize fail: a traceback."""
    thin = finder({"detection.scale": 0.5}, second_look=second_look)
    frame = np.zeros((*shape, 3), np.uint8)
    assert thin.find(frame, []) == ([], True)
    assert thin.find(frame, [(0, 0, 1, 1)]) == ([], True)
