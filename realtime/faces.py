"""The one preprocessing path: read, detect (Haar), align (five landmarks), crop, scale.

``training`` builds its face crops with these functions and the live loop encodes with them,
so a crop at run time is made exactly as the crops the encoder was trained on:

    image (BGR uint8) -> find_faces / photo_face_box -> face_crops (landmarks + similarity warp,
    realtime.align; a box without a face is dropped) -> RGB uint8 size x size -> scale_crops (float32 [0, 1])

``encoder.json`` records that path (:func:`preprocessing_record`) and :func:`make_preprocessor`
refuses a config that would crop differently. Colour conversion always goes through
``cv2.cvtColor`` (never a ``[:, :, ::-1]`` view, which hands native code a negative-stride array).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import cv2
import numpy as np

from realtime.config import Config, DetectionConfig
from realtime.errors import UserError, shorten
# Reading photos lives in realtime.images; these names stay importable from here.
from realtime.images import IMAGE_SUFFIXES, UnreadableImage, read_image, to_bgr8  # noqa: F401

if TYPE_CHECKING:
    from realtime.align import Aligner

from realtime.boxes import Box  # noqa: E402  (app.py takes it from here too)


def open_cascade(name: str) -> cv2.CascadeClassifier:
    """A new Haar cascade by file name in ``cv2.data.haarcascades`` (or a path).

    A CascadeClassifier must not run in two threads at once: a detector that detects on a
    worker thread opens its own with this; photos share one through :func:`load_cascade`."""
    path = Path(name) if Path(name).is_file() else Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise UserError(f"detection.cascade: cannot load Haar cascade {name!r} (looked in {path.parent})")
    return cascade


load_cascade = functools.lru_cache(maxsize=8)(open_cascade)


# The detection settings that decide which box a photo's face gets (caches are keyed on these;
# the file-size and pixel limits decide only whether a photo is read at all).
BOX_SETTINGS = ("cascade", "scale_factor", "min_neighbors", "min_size", "max_side",
                "center_crop_fallback", "center_crop_fraction")


def box_settings(settings: DetectionConfig) -> dict:
    return {k: getattr(settings, k) for k in BOX_SETTINGS}


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def detection_factor(shape: Sequence[int], settings: DetectionConfig, scale: float = 1.0) -> float:
    """How much to shrink an image before detection: ``scale``, and never beyond ``max_side``."""
    longest = max(shape[0], shape[1])
    return min(1.0, scale, settings.max_side / longest)


def find_faces(image: np.ndarray, settings: DetectionConfig, scale: float = 1.0,
               cascade: cv2.CascadeClassifier | None = None) -> list[Box]:
    """Haar faces in full-size pixel boxes, largest first.

    ``scale`` < 1 detects on a downscaled copy (the live loop's speed switch); photos larger
    than ``settings.max_side`` are always downscaled, so huge images cost no extra memory.
    ``cascade``: a thread's own (default: the shared one for ``settings.cascade``).
    """
    gray = to_gray(image)
    if gray.size == 0:
        return []
    factor = detection_factor(gray.shape, settings, scale)
    small = gray if factor >= 1.0 else cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    min_side = max(1, int(round(settings.min_size * factor)))
    found = (cascade or load_cascade(settings.cascade)).detectMultiScale(
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


def photo_face_box(image: np.ndarray, settings: DetectionConfig) -> tuple[Box | None, str, int]:
    """The box of a photo's largest face, how it was found, and how many faces Haar saw.

    The status is ``"face"``, ``"fallback"`` (centre box, when ``center_crop_fallback`` is on)
    or ``"no_face"`` (box is None). Training's crops and the teacher's embeddings both start here,
    so they always describe the same face.
    """
    boxes = find_faces(image, settings)
    if boxes:
        return boxes[0], "face", len(boxes)
    if settings.center_crop_fallback:
        return center_box(image.shape, settings.center_crop_fraction), "fallback", 0
    return None, "no_face", 0


def face_from_photo(image: np.ndarray, settings: DetectionConfig, size: int,
                    aligner: "Aligner | None" = None) -> tuple[np.ndarray | None, str, int]:
    """The crop of the largest face, how it was found, and how many faces Haar saw (see :func:`photo_face_box`).

    With an aligner the crop is aligned, and a box in which it finds no face gives ``"not_a_face"``.
    """
    box, status, count = photo_face_box(image, settings)
    if box is None:
        return None, status, count
    crops, kept = face_crops(image, [box], size, aligner)
    return (crops[0], status, count) if kept else (None, "not_a_face", count)


def face_crops(image: np.ndarray, boxes: Sequence[Box], size: int,
               aligner: "Aligner | None" = None) -> tuple[np.ndarray, list[int]]:
    """The encoder's input for each box that holds a face, and which boxes those are.

    The one place a detected box becomes a crop, for training photos and live frames alike:
    aligned on five landmarks when an aligner is given (boxes without a face are dropped), else
    the box resized.
    """
    if aligner is None:
        return crop_faces(image, boxes, size), list(range(len(boxes)))
    return aligner.crops(image, boxes)


def preprocessing_record(config: "Config") -> dict:
    """What ``encoder.json`` records of the path that made the training crops (checked at run time)."""
    from realtime.align import YUNET_SHA256
    a = config.alignment
    alignment = {"method": "none"} if a.method == "none" else {
        "method": a.method, "model_sha256": YUNET_SHA256, "template": [list(map(float, p)) for p in a.template],
        "template_size": a.template_size, "box_margin": a.box_margin, "landmark_size": a.landmark_size}
    return {"detector": "haar", "cascade": config.detection.cascade, "color": "RGB", "scale": "1/255",
            "crop": "largest face", "alignment": alignment}


def check_preprocessing(info: dict, config: "Config", where: str = "encoder.json") -> None:
    """Refuse a config whose preprocessing differs from the one the encoder was trained with.

    A crop made another way (another cascade, no alignment, another template) is encoded into
    meaningless embeddings without any error, so the mismatch is said at start, naming the key.
    An ``encoder.json`` from before alignment existed records none: that means ``method: none``.
    """
    recorded = info.get("preprocessing") if isinstance(info.get("preprocessing"), dict) else {}
    wanted = preprocessing_record(config)
    if recorded.get("cascade", wanted["cascade"]) != wanted["cascade"]:
        raise UserError(f"{where}: the encoder was trained on crops from Haar cascade "
                        f"{shorten(recorded.get('cascade'))}, config detection.cascade is {shorten(wanted['cascade'])}: "
                        "set detection.cascade to match, or use a model trained with it")
    trained = recorded.get("alignment") if isinstance(recorded.get("alignment"), dict) else {"method": "none"}
    for key, value in wanted["alignment"].items():
        if trained.get(key) != value:
            raise UserError(f"{where}: the encoder was trained with alignment {key} {shorten(trained.get(key))}, "
                            f"config alignment.{key.replace('model_sha256', 'model')} gives {shorten(value)}: "
                            "set the config's alignment section as in the model's config.yaml, or use a matching model")


def make_preprocessor(config: "Config", info: dict, size: int, where: str = "encoder.json") -> "Aligner | None":
    """The aligner for an encoder (None: plain box crops), after checking it matches the encoder's training."""
    from realtime.align import make_aligner
    check_preprocessing(info, config, where)
    return make_aligner(config.alignment, size)
