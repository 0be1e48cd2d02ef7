"""Face detection behind one small interface, and the live loop's policy for calling it.

A detector is shaped like opencv_zoo's wrappers: built from its settings, ``detect(image, scale)
-> boxes`` (a full pass, largest first) and ``detect_near(image, box) -> box | None`` (the same
face again, searched for only around its last box). :class:`HaarDetector` is the default
(``detection.backend: haar``); another detector is one class here and one entry in
:data:`DETECTORS`.

:class:`FaceFinder` is the speed policy, written against that interface alone: a full pass on a
downscaled frame every ``detection.every`` frames (on a worker thread for cameras), faces followed
near their last box in between. What happens to a box next (landmarks, alignment, crop) is
``realtime.crops.face_crops``.
"""
from __future__ import annotations

import functools
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Protocol, Sequence

import cv2
import numpy as np

from realtime.boxes import Box, clip_box, iou, scale_box, sort_largest_first
from realtime.config import DetectionConfig
from realtime.errors import UserError

# A followed face is searched for at sizes within this factor of its last size.
FOLLOW_SIZE_RANGE = 1.6
# Smallest face (px, in the shrunk search region) the follower asks the cascade for.
FOLLOW_MIN_SIDE = 24
# A box found by a full pass that overlaps a followed face this much is that face, not a new one.
SAME_FACE_IOU = 0.3


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
        if min(gray.shape[:2]) < s.min_size or round(min(gray.shape[:2]) * factor) < 1:
            return []          # no face of the smallest size looked for fits (a 1x1 or 3000x3 frame)
        small = gray if factor >= 1.0 else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        min_side = max(1, int(round(s.min_size * factor)))
        found = self._full.detectMultiScale(small, scaleFactor=s.scale_factor, minNeighbors=s.min_neighbors,
                                            minSize=(min_side, min_side))
        return sort_largest_first(clip_box(scale_box(b, factor), gray.shape) for b in np.asarray(found).reshape(-1, 4))

    def detect_near(self, image: np.ndarray, box: Box) -> Box | None:
        """The largest face near ``box`` at about its size, in full-image pixels.

        The region (the box grown by ``follow_margin``) is shrunk so the face is ~``follow_size``
        px and the cascade only tries sizes within ``FOLLOW_SIZE_RANGE`` of it: a handful of tiny
        pyramid levels, not a full pass."""
        gray = to_gray(image)
        height, width = gray.shape[:2]
        x, y, w, h = box
        s = self.settings
        mx, my = int(w * s.follow_margin), int(h * s.follow_margin)
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(width, x + w + mx), min(height, y + h + my)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        factor = min(1.0, s.follow_size / max(w, 1))
        roi = gray[y0:y1, x0:x1]
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
        found = clip_box((bx + x0, by + y0, bw, bh), gray.shape)
        return found if found[2] > 0 and found[3] > 0 else None


# detection.backend -> the detector class (each built from the detection settings alone).
DETECTORS: dict[str, Callable[[DetectionConfig], Detector]] = {"haar": HaarDetector}


def make_detector(settings: DetectionConfig) -> Detector:
    """A new detector of the configured backend (encoder.json records which one made the training crops)."""
    try:
        return DETECTORS[settings.backend](settings)
    except KeyError:
        raise UserError(f"config: detection.backend: no detector {settings.backend!r} "
                        f"(there are: {', '.join(DETECTORS)})") from None


@functools.lru_cache(maxsize=8)
def shared_detector(settings: DetectionConfig) -> Detector:
    """One detector per settings for photos (the main thread's; the live loop's finder has its own)."""
    return make_detector(settings)


class FaceFinder:
    """Detection with the speed switches: downscaled frames, and a full pass only every
    ``detection.every`` frames; in between, faces are searched for only near their last box.

    With a worker (``detection.worker``) the full pass runs on a thread: every frame is followed
    at once, and a finished full pass adds the faces it found that are not followed yet (new faces)."""

    def __init__(self, settings: DetectionConfig, live: bool = False, detector: Detector | None = None):
        self.detector = detector or make_detector(settings)
        self.scale, self.every, self.max_width = settings.scale, settings.every, settings.max_width
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
        return self.detector.detect(frame, self.full_scale(frame))

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
            self._future = self._pool.submit(self.detector.detect, frame.copy(), self.full_scale(frame))
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
        gray = to_gray(frame)  # once for all faces (detectors take gray or BGR)
        found: list[Box] = []
        for box in last:
            near = self.detector.detect_near(gray, box)
            if near is not None and all(iou(near, other) < 0.5 for other in found):
                found.append(near)
        return sort_largest_first(found)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
