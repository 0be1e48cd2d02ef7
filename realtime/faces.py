"""The one preprocessing path: read, detect (Haar), crop, resize, scale.

``training`` builds its face crops with these functions and the live loop encodes with them,
so a crop at run time is made exactly as the crops the encoder was trained on:

    image (BGR uint8) -> find_faces -> crop_face (RGB uint8, size x size) -> scale_crops (float32 [0, 1])

Colour conversion always goes through ``cv2.cvtColor`` (never a ``[:, :, ::-1]`` view, which
hands native code a negative-stride array).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from realtime.config import DetectionConfig
from realtime.errors import UserError

Box = tuple[int, int, int, int]  # x, y, w, h in pixels of the full-size image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"})


class UnreadableImage(UserError):
    """A file that exists but does not decode as an image."""


def read_image(path: str | Path) -> np.ndarray:
    """Decode any common image file to 8-bit BGR (grayscale, RGBA and 16-bit included).

    Every way a file can fail to be a usable image (missing, a folder, text named .jpg,
    corrupt, truncated, a header claiming billions of pixels) is one :class:`UnreadableImage`
    naming the file, never a ``cv2.error`` traceback.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise UnreadableImage(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as err:
        # OpenCV asserts (rather than returning None) on headers past CV_IO_MAX_IMAGE_PIXELS.
        too_big = "MAX_IMAGE_PIXELS" in str(err)
        raise UnreadableImage(f"{path}: " + ("image is too large to decode (over ~1 gigapixel): shrink it"
                                             if too_big else "not an image, or a corrupt one")) from None
    except MemoryError:
        raise UnreadableImage(f"{path}: not enough memory to decode this image: shrink it") from None
    if image is None or image.size == 0:
        raise UnreadableImage(f"{path}: not an image, or a corrupt or truncated one")
    return to_bgr8(image)


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Normalise a decoded image to contiguous 3-channel uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        # Float images are [0, 1] or [0, 255]; NaN must not become an arbitrary byte.
        values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        peak = float(values.max()) if values.size else 0.0
        image = np.clip(values * (255.0 if peak <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] in (1, 2):  # gray, or gray + alpha
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image[:, :, :3])


@functools.lru_cache(maxsize=8)
def load_cascade(name: str) -> cv2.CascadeClassifier:
    """A Haar cascade by file name in ``cv2.data.haarcascades`` (or a path)."""
    path = Path(name) if Path(name).is_file() else Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise UserError(f"detection.cascade: cannot load Haar cascade {name!r} (looked in {path.parent})")
    return cascade


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def detection_factor(shape: Sequence[int], settings: DetectionConfig, scale: float = 1.0) -> float:
    """How much to shrink an image before detection: ``scale``, and never beyond ``max_side``."""
    longest = max(shape[0], shape[1])
    return min(1.0, scale, settings.max_side / longest)


def find_faces(image: np.ndarray, settings: DetectionConfig, scale: float = 1.0) -> list[Box]:
    """Haar faces in full-size pixel boxes, largest first.

    ``scale`` < 1 detects on a downscaled copy (the live loop's speed switch); photos larger
    than ``settings.max_side`` are always downscaled, so huge images cost no extra memory.
    """
    gray = to_gray(image)
    if gray.size == 0:
        return []
    factor = detection_factor(gray.shape, settings, scale)
    small = gray if factor >= 1.0 else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    min_side = max(1, int(round(settings.min_size * factor)))
    found = load_cascade(settings.cascade).detectMultiScale(
        small, scaleFactor=settings.scale_factor, minNeighbors=settings.min_neighbors,
        minSize=(min_side, min_side))
    boxes = [tuple(int(round(v / factor)) for v in box) for box in np.asarray(found).reshape(-1, 4)]
    return sort_largest_first(clip_box(b, gray.shape) for b in boxes)


def sort_largest_first(boxes: Iterable[Box]) -> list[Box]:
    return sorted((b for b in boxes if b[2] > 0 and b[3] > 0), key=lambda b: b[2] * b[3], reverse=True)


def largest_face(boxes: Iterable[Box]) -> Box | None:
    """The largest box: in a photo of one person, the others are bystanders or false hits."""
    ordered = sort_largest_first(boxes)
    return ordered[0] if ordered else None


def clip_box(box: Sequence[int], shape: Sequence[int]) -> Box:
    """Clip a box to the image so cropping never wraps or fails."""
    x, y, w, h = (int(v) for v in box)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(int(shape[1]), x + w), min(int(shape[0]), y + h)
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def center_box(shape: Sequence[int], fraction: float) -> Box:
    """A centred square covering ``fraction`` of the shorter side: the fallback for face-centred sets."""
    height, width = int(shape[0]), int(shape[1])
    side = max(1, int(round(min(height, width) * fraction)))
    return ((width - side) // 2, (height - side) // 2, side, side)


def crop_face(image: np.ndarray, box: Box, size: int) -> np.ndarray:
    """An RGB uint8 ``size`` x ``size`` crop: what the cache stores and the encoder eats (after scaling)."""
    x, y, w, h = clip_box(box, image.shape)
    if w == 0 or h == 0:
        raise ValueError(f"empty face box {box} for image of shape {image.shape}")
    patch = image[y:y + h, x:x + w]
    interpolation = cv2.INTER_AREA if min(w, h) >= size else cv2.INTER_LINEAR
    patch = cv2.resize(patch, (size, size), interpolation=interpolation)
    return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)


def crop_faces(image: np.ndarray, boxes: Sequence[Box], size: int) -> np.ndarray:
    """Crops of several boxes as one ``(n, size, size, 3)`` uint8 batch."""
    if not boxes:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([crop_face(image, box, size) for box in boxes])


def scale_crops(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB crops to the float32 [0, 1] tensor the encoder takes."""
    return np.asarray(crops, dtype=np.float32) * np.float32(1.0 / 255.0)


def face_from_photo(image: np.ndarray, settings: DetectionConfig, size: int) -> tuple[np.ndarray | None, str, int]:
    """The crop of the largest face, how it was found, and how many faces Haar saw.

    The status is ``"face"``, ``"fallback"`` (centre crop, when ``center_crop_fallback`` is on)
    or ``"no_face"`` (crop is None).
    """
    boxes = find_faces(image, settings)
    if boxes:
        return crop_face(image, boxes[0], size), "face", len(boxes)
    if settings.center_crop_fallback:
        return crop_face(image, center_box(image.shape, settings.center_crop_fraction), size), "fallback", 0
    return None, "no_face", 0
