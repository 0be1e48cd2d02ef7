"""realtime.detection: the detectors' interface (Haar, YuNet), a huge photo detected on a downscaled
copy, and the live loop's policy (FaceFinder): scale cap, when a full detection runs, and the second
look where Haar finds nobody or loses a face."""
import json
import logging
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from realtime.boxes import iou
from realtime.config import AlignmentConfig, apply_overrides, load_config
from realtime.detection import FaceFinder, HaarDetector, make_detector
from realtime.images import read_image
from testdata import DATA, ROOT, needs_data

YUNET = AlignmentConfig(method="yunet")


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


HUGE_SCRIPT = r"""
import json, resource, sys, time
from realtime.config import DetectionConfig
from realtime.detection import HaarDetector
from realtime.images import read_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
image = read_image(sys.argv[1])
decoded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
boxes = HaarDetector(DetectionConfig()).detect(image)
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"shape": image.shape, "boxes": boxes, "detect_s": seconds,
                  "kb": [before, decoded, after]}))
"""


def test_ten_thousand_pixel_photo_is_detected_on_a_downscaled_copy(face_photos, tmp_path):
    path, box = face_photos[0]
    photo = read_image(path)
    scale, off_x, off_y = 20, 1500, 2500
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    canvas = np.full((10_000, 10_000, 3), 200, np.uint8)
    h, w = min(big.shape[0], 10_000 - off_y), min(big.shape[1], 10_000 - off_x)
    canvas[off_y:off_y + h, off_x:off_x + w] = big[:h, :w]
    huge = tmp_path / "huge.jpg"
    assert cv2.imwrite(str(huge), canvas, [cv2.IMWRITE_JPEG_QUALITY, 80])
    del canvas, big

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-c", HUGE_SCRIPT, str(huge)], capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["shape"] == [10_000, 10_000, 3]
    expected = (off_x + box[0] * scale, off_y + box[1] * scale, box[2] * scale, box[3] * scale)
    assert result["boxes"], "no face found in the 10,000 x 10,000 photo"
    assert iou(result["boxes"][0], expected) > 0.5, (result["boxes"][0], expected)  # full-size coordinates
    before, decoded, after = (kb / 1024 for kb in result["kb"])  # ru_maxrss is KiB on Linux
    logging.getLogger(__name__).info("10k photo: peak %.0f MiB decoded, %.0f MiB after detection, %.2f s",
                                     decoded, after, result["detect_s"])
    # The decoded BGR image is 286 MiB; detecting at full size would add pyramids of several
    # hundred MiB. On the downscaled copy only the gray copy (95 MiB) and small buffers are added.
    assert after - decoded < 200, f"detection added {after - decoded:.0f} MiB"
    assert after < 1500, f"peak {after:.0f} MiB"
    assert result["detect_s"] < 10


@needs_data
def test_haar_detector_interface_detects_and_follows_a_face():
    import cv2
    from realtime.detection import HaarDetector
    capture = cv2.VideoCapture(str(DATA / "videos" / "sadtalker_WDA_KatieHill_000.mp4"))
    frames = [capture.read()[1] for _ in range(3)]
    capture.release()
    detector = HaarDetector(load_config().detection)
    boxes = detector.detect(frames[0], 0.5)
    assert boxes and boxes[0][2] > 80
    near = detector.detect_near(frames[2], boxes[0])
    assert near is not None
    from realtime.boxes import iou
    assert iou(near, boxes[0]) > 0.5
    assert detector.detect_near(np.zeros_like(frames[0]), boxes[0]) is None


@needs_data
def test_yunet_detector_interface_detects_and_follows_a_face():
    import cv2
    from realtime.detection import make_detector
    capture = cv2.VideoCapture(str(DATA / "videos" / "sadtalker_WDA_KatieHill_000.mp4"))
    frames = [capture.read()[1] for _ in range(3)]
    capture.release()
    detector = make_detector("yunet", load_config().detection, YUNET)
    boxes = detector.detect(frames[0], 0.5)
    assert len(boxes) == 1 and boxes[0][2] > 80
    near = detector.detect_near(frames[2], boxes[0])
    from realtime.boxes import iou
    assert near is not None and iou(near, boxes[0]) > 0.7
    assert detector.detect_near(np.zeros_like(frames[0]), boxes[0]) is None


@needs_data
def test_a_yunet_backend_follows_faces_itself():
    """With detection.backend yunet the followed faces are found near their boxes by YuNet itself (the
    finder hands every detector the colour frame): no second look, no full pass between the due ones."""
    capture = cv2.VideoCapture(str(DATA / "videos" / "sadtalker_WDA_KatieHill_000.mp4"))
    frames = [capture.read()[1] for _ in range(4)]
    capture.release()
    config = apply_overrides(load_config(), {"detection.worker": "never", "detection.every": 10})
    yunet = make_detector("yunet", config.detection, YUNET)
    finder_ = FaceFinder(config.detection, yunet, make_detector("yunet", config.detection, YUNET))
    boxes, full = finder_.find(frames[0], [])
    assert full and len(boxes) == 1
    for frame in frames[1:]:
        boxes, full = finder_.find(frame, boxes)
        assert not full and len(boxes) == 1
    assert finder_.second_looks == 0
