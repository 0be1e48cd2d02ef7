"""The one owner of the face path: pixels in, names out.

    image -> FaceCropper: detector (detection.backend) -> boxes -> landmarks + alignment -> crops
          -> encoder (encoder.tflite) -> embeddings
          -> matcher (recognition.match) against a gallery's index, within the threshold policy
             (realtime.thresholds.ThresholdPolicy: the gallery's size, verify's 1:1 point, a flag)
          -> names

The Python API, the command line, the live loop (:class:`realtime.app.App`), video enrolment and
the benchmarks all go through a :class:`Recognizer`, and training's crop builder through its
:class:`~realtime.crops.FaceCropper`, so a crop is made one way and a threshold is decided in one
place. An image is a file path or a BGR uint8 array (what ``cv2.imread`` returns).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from realtime.boxes import Box
from realtime.config import Config, load_config, resolve_path
from realtime.crops import FaceCropper, check_preprocessing
from realtime.detection import FaceFinder
from realtime.encoder import Encoder
from realtime.errors import UserError, quiet_native_output
from realtime.images import load_image
from realtime.matching import Index, Match, match
from realtime.thresholds import ThresholdPolicy
from realtime.tracking import Tracker

log = logging.getLogger("realtime")

Image = Union[str, Path, np.ndarray]


@dataclass(frozen=True)
class Verification:
    """The answer to "are these two faces the same person?"."""

    same: bool          # distance <= threshold
    distance: float     # Euclidean distance between the two embeddings (0 = identical)
    threshold: float
    box_a: Box          # the face used in each image (its largest)
    box_b: Box


@dataclass(frozen=True)
class Identity:
    """One face in an image and who it is."""

    box: Box
    name: str | None        # the nearest enrolled person if within the threshold, else None (unknown)
    nearest: str | None     # the nearest enrolled person whatever the distance (None: empty gallery)
    distance: float         # Euclidean distance to them (inf: empty gallery)


class Recognizer:
    """A loaded encoder with the face path it was trained with: what every question here needs, loaded once.

    ``config``: a :class:`Config`, a settings file, or None for the project's ``config.yaml``.
    ``model_dir`` None: the config's ``model.dir`` (the shipped encoder in ``models/``).
    ``threshold`` None: ``recognition.threshold``, else the one measured at training and written to
    ``encoder.json`` (for a gallery, the open-set point for its size; for ``verify``, the one-person point).
    """

    def __init__(self, model_dir: str | Path | None = None, config: Config | str | Path | None = None,
                 threshold: float | None = None):
        self.config = config if isinstance(config, Config) else load_config(config)
        with quiet_native_output():  # LiteRT prints an XNNPACK line on fd 2 (shown with -v)
            self.encoder = Encoder(Path(model_dir) if model_dir is not None else resolve_path(self.config.model.dir))
        # Landmarks and alignment as the encoder was trained (a box without a face is dropped).
        check_preprocessing(self.encoder.info, self.config)
        self.cropper = FaceCropper(self.config.detection, self.config.alignment, self.encoder.input_size)
        self.thresholds = ThresholdPolicy(self.encoder.info, self.config.recognition, threshold)
        self.match_mode = self.config.recognition.match

    # -- the stages ------------------------------------------------------------------------------------------
    def detect(self, image: Image) -> list[Box]:
        """Every face's box ``(x, y, w, h)``, largest first."""
        return self.cropper.detect(self.load(image))

    def load(self, image: Image) -> np.ndarray:
        """A BGR uint8 array of a path (within ``detection``'s photo limits) or an array."""
        return load_image(image, self.config.detection)

    def crops(self, image: np.ndarray, boxes: Sequence[Box]) -> tuple[np.ndarray, list[int]]:
        """The encoder's input for each box that holds a face, and which boxes those are."""
        return self.cropper.crops(image, boxes)

    def encode(self, crops: np.ndarray) -> np.ndarray:
        """Embeddings ``(n, d)`` of crops made by :meth:`crops`."""
        return self.encoder.encode(crops)

    def match(self, index: Index, embeddings: np.ndarray, threshold: float | None = None) -> list[Match]:
        """Who each embedding is among ``index``'s people (``threshold`` None: the one for its size)."""
        if threshold is None:
            threshold = self.thresholds.for_gallery(len(index.names))
        return match(index, embeddings, threshold, self.match_mode)

    def finder(self, live: bool = False) -> FaceFinder:
        """The live loop's detection policy, with its own detector (it may run on a worker thread)."""
        return self.cropper.finder(live)

    def located_crops(self, image: np.ndarray, boxes: Sequence[Box]):
        """:meth:`crops` with each kept face's five landmarks and YuNet's score (the live loop judges
        unknown faces' views by them): ``(crops, kept, points, scores)``."""
        return self.cropper.located_crops(image, boxes)

    def tracker(self) -> Tracker:
        t = self.config.tracking
        return Tracker(t.iou, t.max_missed, t.vote_frames, t.vote_agree, t.encode_every, t.encode_iou)

    # -- photos ----------------------------------------------------------------------------------------------
    def faces(self, image: Image, boxes: Sequence[Box] | None = None) -> tuple[list[Box], np.ndarray]:
        """The faces' boxes and their embeddings ``(n, d)``; ``boxes`` None: every face detected."""
        image = self.load(image)
        if boxes is None:
            boxes = self.detect(image)
        crops, kept = self.crops(image, boxes)
        return [tuple(int(v) for v in boxes[i]) for i in kept], self.encode(crops)

    def encode_image(self, image: Image, boxes: Sequence[Box] | None = None) -> np.ndarray:
        """One embedding ``(n, d)`` per face, unit length; ``boxes`` None: every face detected."""
        return self.faces(image, boxes)[1]

    def largest_face(self, image: Image, what: str = "image") -> tuple[Box, np.ndarray]:
        """The largest face's box and embedding; a UserError naming ``what`` when there is none."""
        boxes, embeddings = self.faces(image)
        if not boxes:
            raise UserError(f"{what}: no face found")
        if len(boxes) > 1:
            log.warning("%s: %d faces found, using the largest", what, len(boxes))
        return boxes[0], embeddings[0]

    def verify(self, a: Image, b: Image) -> Verification:
        """Same person or not: the distance between the largest face of each image, against the 1:1 threshold."""
        box_a, emb_a = self.largest_face(a, _label(a, "first image"))
        box_b, emb_b = self.largest_face(b, _label(b, "second image"))
        distance = float(np.linalg.norm(emb_a - emb_b))
        threshold = self.thresholds.pair()
        return Verification(distance <= threshold, distance, threshold, box_a, box_b)

    def identify(self, image: Image, gallery) -> list[Identity]:
        """Who each face in ``image`` is, by a gallery's enrolled samples (anything with an ``index()``:
        an open store or :class:`realtime.api.Gallery`)."""
        boxes, embeddings = self.faces(image)
        return [Identity(box, m.name, m.nearest, float(m.distance))
                for box, m in zip(boxes, self.match(gallery.index(), embeddings))]


def _label(image: Image, fallback: str) -> str:
    return str(image) if isinstance(image, (str, Path)) else fallback
