"""Face detection behind one small interface, and the live loop's policy for calling it.

A detector is shaped like opencv_zoo's wrappers: built from its settings, ``detect(image, scale)
-> boxes`` (a full pass, largest first) and ``detect_near(image, box) -> box | None`` (the same
face again, searched for only around its last box). :class:`HaarDetector` is the default
(``detection.backend: haar``); :class:`YuNetDetector` is its second look
(``detection.second_look: yunet``): where Haar finds nothing, in a photo or a frame, or loses a
face it was following. Another detector is one class here and one entry in :data:`DETECTORS`.

:class:`FaceFinder` is the speed policy, written against that interface alone: a full pass on a
downscaled frame every ``detection.every`` frames (on a worker thread for cameras), faces followed
near their last box in between. What happens to a box next (landmarks, alignment, crop) is
``realtime.crops.FaceCropper``.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Protocol, Sequence

import cv2
import numpy as np

from realtime.boxes import Box, clip_box, iou, scale_box, sort_largest_first
from realtime.config import AlignmentConfig, DetectionConfig, resolve_path
from realtime.errors import UserError
from realtime.yunet import YuNet, square_region

# A followed face is searched for at sizes within this factor of its last size.
FOLLOW_SIZE_RANGE = 1.6
# Smallest face (px, in the shrunk search region) the follower asks the cascade for.
FOLLOW_MIN_SIDE = 24
# A box found by a full pass that overlaps a followed face this much is that face, not a new one.
SAME_FACE_IOU = 0.3
# YuNet follows a face on a square this many times the follower's face size (the face and its margin).
YUNET_FOLLOW_SIDE = 2


class Detector(Protocol):
    def detect(self, image: np.ndarray, scale: float = 1.0) -> list[Box]: ...
    def detect_near(self, image: np.ndarray, box: Box) -> Box | None: ...


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def open_cascade(name: str) -> cv2.CascadeClassifier:
    """A new Haar cascade by file name in ``cv2.data.haarcascades`` (or a path).

    A CascadeClassifier must not run in two threads at once, so each detector opens its own."""
    path = Path(name) if Path(name).is_file() else Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise UserError(f"detection.cascade: cannot load Haar cascade {name!r} (looked in {path.parent})")
    return cascade


def detection_factor(shape: Sequence[int], settings: DetectionConfig, scale: float = 1.0) -> float:
    """How much to shrink an image before detection: ``scale``, and never beyond ``max_side``."""
    longest = max(shape[0], shape[1])
    return min(1.0, scale, settings.max_side / longest)


# Neither detector finds a face in an image (as detected, after any downscale) thinner than this:
# Haar's window is 24 px, YuNet's smallest faces about 10 px (and a 3 px strip gives it garbage).
MIN_DETECTABLE_SIDE = 16


def too_thin(shape: Sequence[int], settings: DetectionConfig, factor: float) -> bool:
    """No face of the smallest size looked for fits (a 1x1, 2000x1 or 3000x3 frame), or the image
    detected on (downscaled by ``factor``) would be too thin for any detection, or 0 px (which
    OpenCV's resize refuses)."""
    side = min(shape[0], shape[1])
    return side < settings.min_size or side * factor < MIN_DETECTABLE_SIDE


class HaarDetector:
    """OpenCV's Haar cascade. ``detect`` and ``detect_near`` each own a cascade, so a full pass
    on a worker thread and the follower on the main thread never share one."""

    def __init__(self, settings: DetectionConfig):
        self.settings = settings
        self._full = open_cascade(settings.cascade)
        self._near = open_cascade(settings.cascade)

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list[Box]:
        """Faces in full-size pixel boxes, largest first.

        ``scale`` < 1 detects on a downscaled copy (the live loop's speed switch); images larger
        than ``max_side`` are always downscaled, so huge photos cost no extra memory."""
        gray = to_gray(image)
        s = self.settings
        factor = detection_factor(gray.shape, s, scale) if gray.size else 0.0
        if too_thin(gray.shape, s, factor):
            return []
        small = gray if factor >= 1.0 else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        min_side = max(1, int(round(s.min_size * factor)))
        found = self._full.detectMultiScale(small, scaleFactor=s.scale_factor, minNeighbors=s.min_neighbors,
                                            minSize=(min_side, min_side))
        return sort_largest_first(clip_box(scale_box(b, factor), gray.shape) for b in np.asarray(found).reshape(-1, 4))

    def detect_near(self, image: np.ndarray, box: Box) -> Box | None:
        """The largest face near ``box`` at about its size, in full-image pixels.

        The region (the box grown by ``follow_margin``) is shrunk so the face is ~``follow_size``
        px and the cascade only tries sizes within ``FOLLOW_SIZE_RANGE`` of it: a handful of tiny
        pyramid levels, not a full pass. Only the region is made gray."""
        height, width = image.shape[:2]
        x, y, w, h = box
        s = self.settings
        mx, my = int(w * s.follow_margin), int(h * s.follow_margin)
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(width, x + w + mx), min(height, y + h + my)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        factor = min(1.0, s.follow_size / max(w, 1))
        roi = to_gray(image[y0:y1, x0:x1])
        if factor < 1.0:
            roi = cv2.resize(roi, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        side = w * factor
        lo = max(FOLLOW_MIN_SIDE, int(side / FOLLOW_SIZE_RANGE))
        hi = max(lo + 1, int(side * FOLLOW_SIZE_RANGE))
        hits = np.asarray(self._near.detectMultiScale(
            roi, scaleFactor=s.scale_factor, minNeighbors=s.min_neighbors,
            minSize=(lo, lo), maxSize=(hi, hi))).reshape(-1, 4)
        if not len(hits):
            return None
        bx, by, bw, bh = scale_box(max(hits.tolist(), key=lambda b: b[2] * b[3]), factor)
        found = clip_box((bx + x0, by + y0, bw, bh), image.shape)
        return found if found[2] > 0 and found[3] > 0 else None


class YuNetDetector:
    """OpenCV Zoo's YuNet (the model alignment already loads for landmarks) as a detector: it finds
    faces Haar misses (turned heads, hard light), at about 5 ms on a 320 x 240 frame.

    Its boxes cover forehead to chin (taller than Haar's); alignment only needs a box around the
    face, and the tracker only overlap, so the two kinds of box mix."""

    def __init__(self, settings: DetectionConfig, model: Path, min_score: float):
        self.settings = settings
        self.yunet = YuNet(model, min_score)

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list[Box]:
        """Faces in full-size pixel boxes, largest first, downscaled as Haar's full pass is."""
        if image.ndim != 3 or image.size == 0:
            return []
        factor = detection_factor(image.shape, self.settings, scale)
        if too_thin(image.shape, self.settings, factor):
            return []
        small = image if factor >= 1.0 else cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        found = self.yunet.infer(small)
        boxes = (clip_box(scale_box(row[:4], factor), image.shape) for row in found)
        return sort_largest_first(b for b in boxes if min(b[2], b[3]) >= self.settings.min_size)

    def detect_near(self, image: np.ndarray, box: Box) -> Box | None:
        """The face nearest ``box``'s centre in the box grown by ``follow_margin``, in full-image pixels."""
        if image.ndim != 3:
            return None
        x, y, w, h = box
        span = int(round(max(w, h) * (1.0 + 2.0 * self.settings.follow_margin)))
        if span < 8:
            return None
        side = max(32, YUNET_FOLLOW_SIDE * self.settings.follow_size)
        x0, y0 = int(round(x + w / 2.0 - span / 2.0)), int(round(y + h / 2.0 - span / 2.0))
        found = self.yunet.infer(square_region(image, x0, y0, span, side))
        if not len(found):
            return None
        centres = found[:, 0:2] + found[:, 2:4] / 2.0
        bx, by, bw, bh = found[int(np.argmin(((centres - side / 2.0) ** 2).sum(1))), :4] * (span / side)
        near = clip_box((int(round(bx)) + x0, int(round(by)) + y0, int(round(bw)), int(round(bh))), image.shape)
        return near if near[2] > 0 and near[3] > 0 else None


def _haar(detection: DetectionConfig, alignment: AlignmentConfig) -> Detector:
    return HaarDetector(detection)


def _yunet(detection: DetectionConfig, alignment: AlignmentConfig) -> Detector:
    return YuNetDetector(detection, resolve_path(alignment.model), alignment.min_score)


# detection.backend and detection.second_look -> the detector (built from the detection settings,
# and alignment's for the YuNet model it shares).
DETECTORS: dict[str, Callable[[DetectionConfig, AlignmentConfig], Detector]] = {"haar": _haar, "yunet": _yunet}


def make_detector(name: str, detection: DetectionConfig, alignment: AlignmentConfig) -> Detector:
    """A new detector by its registry name (encoder.json records which ones made the training crops)."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise UserError(f"config: detection.backend: no detector {name!r} (there are: {', '.join(DETECTORS)})") from None
    return factory(detection, alignment)


class FaceFinder:
    """Detection with the speed switches: downscaled frames, and a full pass only every
    ``detection.every`` frames; in between, faces are searched for only near their last box.

    With a worker (``detection.worker``) the full pass runs on a thread: every frame is followed
    at once, and a finished full pass adds the faces it found that are not followed yet (new faces)."""

    def __init__(self, settings: DetectionConfig, detector: Detector, second_look: Detector | None = None,
                 live: bool = False):
        self.detector = detector
        self.second_look = second_look
        self.scale, self.every, self.max_width = settings.scale, settings.every, settings.max_width
        self.second_looks = 0          # how often the second look ran (the benchmark reports it)
        self._since_full: int | None = None
        self.is_async = settings.worker == "always" or (settings.worker == "auto" and live)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="detect") if self.is_async else None
        self._future: Future | None = None

    def find(self, frame: np.ndarray, last: list[Box]) -> tuple[list[Box], bool]:
        """Boxes in full-frame pixels (largest first) and whether a full detection is in them."""
        if self._pool is not None:
            return self._find_async(frame, last)
        if self._since_full is None or self._since_full + 1 >= self.every:
            return self._full(frame), True
        followed = self._follow(frame, last) if last else []
        if last and not followed:  # every followed face is gone (it left, or the scene cut): look everywhere now
            return self._full(frame), True
        self._since_full += 1
        return followed, False

    def _full(self, frame: np.ndarray) -> list[Box]:
        self._since_full = 0
        return self._full_pass(frame, self.full_scale(frame))

    def _full_pass(self, frame: np.ndarray, scale: float) -> list[Box]:
        """A full detection, and the second look over the whole frame when it finds nobody."""
        boxes = self.detector.detect(frame, scale)
        if not boxes and self.second_look is not None:
            self.second_looks += 1
            boxes = self.second_look.detect(frame, scale)
        return boxes

    def full_scale(self, frame: np.ndarray) -> float:
        """The full detection's scale: ``detect_scale``, and no wider than ``detect_max_width``."""
        if self.max_width and frame.shape[1] * self.scale > self.max_width:
            return self.max_width / frame.shape[1]
        return self.scale

    def _find_async(self, frame: np.ndarray, last: list[Box]) -> tuple[list[Box], bool]:
        first = self._since_full is None
        fresh = None
        due = first or self._since_full + 1 >= self.every
        # A pass that is done joins now; one that is due again waits, so boxes are never more
        # than ``detect_every`` frames old (files run headless faster than detection can).
        if self._future is not None and (due or self._future.done()):
            fresh, self._future = self._future.result(), None
        if self._future is None and due:
            # A copy: the caller draws on ``frame`` while the worker still reads it.
            self._future = self._pool.submit(self._full_pass, frame.copy(), self.full_scale(frame))
            self._since_full = 0
            if first:  # the very first frame waits, so faces show from frame 0
                fresh, self._future = self._future.result(), None
        else:
            self._since_full += 1
        followed = self._follow(frame, last) if last and not first else []
        if fresh is None:
            return followed, False
        boxes = followed + [b for b in fresh if all(iou(b, f) < SAME_FACE_IOU for f in followed)]
        return sort_largest_first(boxes), True

    def _follow(self, frame: np.ndarray, last: list[Box]) -> list[Box]:
        """Each followed face near its last box; one the detector loses gets the second look there."""
        found: list[Box] = []
        for box in last:
            near = self.detector.detect_near(frame, box)
            if near is None and self.second_look is not None:
                self.second_looks += 1
                near = self.second_look.detect_near(frame, box)
            if near is not None and all(iou(near, other) < 0.5 for other in found):
                found.append(near)
        return sort_largest_first(found)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
