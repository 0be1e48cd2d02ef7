"""From a detected box to the encoder's input: landmarks and alignment (or the box resized), and
the check that this is how the encoder's training crops were made.

The one place a detected box becomes a crop, for training photos and live frames alike, so a crop
at run time is made exactly as the crops the encoder was trained on::

    box -> face_crops (realtime.align: five landmarks + similarity warp; a box without a face is
    dropped) -> RGB uint8 size x size -> realtime.encoder.scale_crops (float32 [0, 1])

``encoder.json`` records that path (:func:`preprocessing_record`) and :func:`check_preprocessing`
refuses a config that would crop differently. Colour conversion always goes through
``cv2.cvtColor`` (never a ``[:, :, ::-1]`` view, which hands native code a negative-stride array).
"""
from __future__ import annotations

import logging
from typing import Sequence

import cv2
import numpy as np

from realtime.align import Aligner, make_aligner
from realtime.boxes import Box, clip_box
from realtime.config import AlignmentConfig, Config, DetectionConfig
from realtime.detection import FaceFinder, make_detector
from realtime.errors import UserError, shorten
from realtime.yunet import YUNET_SHA256

log = logging.getLogger(__name__)


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


def face_crops(image: np.ndarray, boxes: Sequence[Box], size: int,
               aligner: Aligner | None = None) -> tuple[np.ndarray, list[int]]:
    """The encoder's input for each box that holds a face, and which boxes those are.

    The one place a detected box becomes a crop, for training photos and live frames alike:
    aligned on five landmarks when an aligner is given (boxes without a face are dropped), else
    the box resized.
    """
    if aligner is None:
        return crop_faces(image, boxes, size), list(range(len(boxes)))
    return aligner.crops(image, boxes)


class FaceCropper:
    """Pixels to the encoder's crops: the configured detector and its second look, then landmarks
    and alignment.

    The face path up to the encoder, built from the settings alone: :class:`realtime.recognizer.Recognizer`
    owns one (checked against its encoder's ``encoder.json``), and training builds its crops with
    one before any encoder exists. ``detect`` and ``crops`` run on the caller's thread; the live
    loop's :meth:`finder` gets detectors of its own (it may detect on a worker thread)."""

    def __init__(self, detection: DetectionConfig, alignment: AlignmentConfig, size: int):
        self.settings, self.alignment, self.size = detection, alignment, size
        self.detector = self._detector(detection.backend)
        self.second_look = self._second_look()
        self.aligner = make_aligner(alignment, size)

    def _detector(self, name: str):
        return make_detector(name, self.settings, self.alignment)

    def _second_look(self):
        name = self.settings.second_look
        return None if name == "none" else self._detector(name)

    def detect(self, image: np.ndarray) -> list[Box]:
        """Every face's box in a photo or frame, largest first (a full pass at full size).

        Boxes in which alignment finds no face of their own (a shirt, a second box on one face)
        are left out; where the detector finds no face, the second look searches the whole image."""
        return [box for box, _ in self.detect_located(image)]

    def detect_located(self, image: np.ndarray) -> list[tuple[Box, np.ndarray | None]]:
        """:meth:`detect`'s boxes, each with the five landmarks that showed it holds a face (None
        without alignment): the points its crop is aligned on, so they are found once."""
        faces = self._holding_faces(image, self.detector.detect(image))
        if not faces and self.second_look is not None:
            faces = self._holding_faces(image, self.second_look.detect(image))
        return faces

    def _holding_faces(self, image: np.ndarray, boxes: list[Box]) -> list[tuple[Box, np.ndarray | None]]:
        if self.aligner is None:
            return [(box, None) for box in boxes]
        return [(boxes[i], points) for i, points in self.aligner.locate(image, boxes)]

    def crops(self, image: np.ndarray, boxes: Sequence[Box]) -> tuple[np.ndarray, list[int]]:
        """The encoder's input for each box that holds a face, and which boxes those are."""
        return face_crops(image, list(boxes), self.size, self.aligner)

    def crops_of(self, image: np.ndarray, located: Sequence[tuple[Box, np.ndarray | None]]) -> np.ndarray:
        """The crops of :meth:`detect_located`'s faces, aligned on the points found there (what
        :meth:`crops` gives for their boxes, without locating the landmarks again)."""
        if not located:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        if self.aligner is None:
            return crop_faces(image, [box for box, _ in located], self.size)
        return np.stack([self.aligner.align(image, points) for _, points in located])

    def located_crops(self, image: np.ndarray, boxes: Sequence[Box]) -> tuple[np.ndarray, list[int], list, list[float]]:
        """:meth:`crops` with each kept face's five landmarks and YuNet's score (None and 1.0
        without alignment): what a view's quality is judged by (realtime.unknowns.quality)."""
        if self.aligner is None:
            crops, kept = self.crops(image, boxes)
            return crops, kept, [None] * len(kept), [1.0] * len(kept)
        located = self.aligner.located(image, list(boxes))
        if not located:
            return np.zeros((0, self.size, self.size, 3), np.uint8), [], [], []
        crops = np.stack([self.aligner.align(image, points) for _, points, _ in located])
        return crops, [i for i, _, _ in located], [p for _, p, _ in located], [s for _, _, s in located]

    def finder(self, live: bool = False) -> FaceFinder:
        return FaceFinder(self.settings, self._detector(self.settings.backend), self._second_look(), live)


def preprocessing_record(config: Config) -> dict:
    """What ``encoder.json`` records of the path that made the training crops (checked at run time)."""
    a = config.alignment
    alignment = {"method": "none"} if a.method == "none" else {
        "method": a.method, "model_sha256": YUNET_SHA256, "template": [list(map(float, p)) for p in a.template],
        "template_size": a.template_size, "box_margin": a.box_margin, "landmark_size": a.landmark_size}
    return {"detector": config.detection.backend, "second_look": config.detection.second_look,
            "cascade": config.detection.cascade, "color": "RGB", "scale": "1/255", "crop": "largest face",
            "alignment": alignment}


def check_preprocessing(info: dict, config: Config, where: str = "encoder.json") -> None:
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
    if recorded.get("detector", wanted["detector"]) != wanted["detector"]:
        log.warning("%s: the encoder's training faces were found by detector %s, detection.backend is %s: faces "
                    "are aligned on their own landmarks either way, but which faces are found may differ",
                    where, shorten(recorded.get("detector")), wanted["detector"])
    trained = recorded.get("alignment") if isinstance(recorded.get("alignment"), dict) else {"method": "none"}
    for key, value in wanted["alignment"].items():
        if trained.get(key) != value:
            raise UserError(f"{where}: the encoder was trained with alignment {key} {shorten(trained.get(key))}, "
                            f"config alignment.{key.replace('model_sha256', 'model')} gives {shorten(value)}: "
                            "set the config's alignment section as in the model's config.yaml, or use a matching model")
