"""The one owner of the face path: pixels in, names out.

    image -> FaceCropper: detector (detection.backend) -> boxes -> landmarks + alignment -> crops
          -> encoder (encoder.tflite) -> embeddings
          -> matcher (recognition.match) against a gallery's index, within the threshold policy
             (realtime.thresholds.ThresholdPolicy: the gallery's size, verify's 1:1 point, a flag)
          -> names

The Python API, the command line, the live loop (:class:`realtime.app.App`), video enrolment and
the benchmarks all go through a :class:`Recognizer`, and training's crop builder through its
:class:`~realtime.crops.FaceCropper`, so a crop is made one way and a threshold is decided in one
place. An image is a file path, a PIL image, or a uint8 array in the channel order ``color`` names:
``"bgr"`` (OpenCV's, what ``cv2.imread`` returns: the default) or ``"rgb"`` (PIL, matplotlib,
face_recognition). An RGB array passed as BGR is not an error, only worse answers, so say it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

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

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

# A photo file's path, a PIL image (its own mode says its colours), or an array (``color`` says its order).
Image = Union[str, Path, np.ndarray, "PILImage"]

# The five landmarks of a face, in the order of the alignment template (realtime.align): the person's
# right eye (on the image's left), their left eye, the nose tip, the right and left corners of the mouth.
LANDMARK_NAMES = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")


def named_points(points) -> dict:
    """``{"right_eye": (x, y), ...}`` from ``(5, 2)`` points in ``LANDMARK_NAMES`` order, to 0.1 px."""
    return {name: (round(float(x), 1), round(float(y), 1)) for name, (x, y) in zip(LANDMARK_NAMES, points)}


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
    def detect(self, image: Image, color: str = "bgr") -> list[Box]:
        """Every face's box ``(x, y, w, h)``, largest first; ``color``: an array's channel order ("bgr" or "rgb")."""
        return self.cropper.detect(self.load(image, color))

    def load(self, image: Image, color: str = "bgr") -> np.ndarray:
        """A BGR uint8 array of a path (within ``detection``'s photo limits), a PIL image, or an array whose
        channel order ``color`` names: "bgr" (OpenCV's, the default) or "rgb" (PIL, matplotlib, face_recognition)."""
        return load_image(image, self.config.detection, color)

    def crops(self, image: np.ndarray, boxes: Sequence[Box]) -> tuple[np.ndarray, list[int]]:
        """The encoder's input for each box that holds a face, and which boxes those are; ``image`` is BGR, as
        :meth:`load` returns it (or a frame of OpenCV's)."""
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
    def faces(self, image: Image, boxes: Sequence[Box] | None = None,
              color: str = "bgr") -> tuple[list[Box], np.ndarray]:
        """The faces' boxes and their embeddings ``(n, d)``; ``boxes`` None: every face detected. A box in
        which no face is found is left out. ``color``: an array's channel order, "bgr" or "rgb"."""
        image = self.load(image, color)
        if boxes is None:
            located = self.cropper.detect_located(image)      # each face's landmarks found once
            found, crops = [box for box, _ in located], self.cropper.crops_of(image, located)
        else:
            crops, kept = self.crops(image, boxes)
            found = [boxes[i] for i in kept]
        return [tuple(int(v) for v in box) for box in found], self.encode(crops)

    def encode_image(self, image: Image, boxes: Sequence[Box] | None = None, color: str = "bgr") -> np.ndarray:
        """One embedding ``(n, d)`` per face, unit length; ``boxes`` None: every face detected; ``color``: an
        array's channel order, "bgr" or "rgb"."""
        return self.faces(image, boxes, color)[1]

    def landmarks(self, image: Image, boxes: Sequence[Box] | None = None,
                  color: str = "bgr") -> tuple[list[Box], np.ndarray]:
        """The faces' boxes and their five landmarks ``(n, 5, 2)`` in image pixels (``LANDMARK_NAMES``
        order), the points the crops are aligned on; ``boxes`` None: every face detected, and a box in which
        no face is found is left out (as :meth:`faces` does). ``color``: an array's channel order."""
        aligner = self.cropper.aligner
        if aligner is None:
            raise UserError("alignment.method is none: this encoder's faces are not aligned on landmarks")
        image = self.load(image, color)
        if boxes is None:
            located = self.cropper.detect_located(image)
        else:   # the boxes Aligner.crops keeps, with their points
            located = [(boxes[i], points) for i, points in aligner.locate(image, list(boxes))]
        kept = [tuple(int(v) for v in box) for box, _ in located]
        return kept, np.stack([p for _, p in located]) if located else np.zeros((0, 5, 2), np.float32)

    def largest_face(self, image: Image, what: str = "image", color: str = "bgr") -> tuple[Box, np.ndarray]:
        """The largest face's box and embedding; a UserError naming ``what`` when there is none. ``color``:
        an array's channel order, "bgr" or "rgb"."""
        boxes, embeddings = self.faces(image, color=color)
        if not boxes:
            raise UserError(f"{what}: no face found")
        if len(boxes) > 1:
            log.warning("%s: %d faces found, using the largest", what, len(boxes))
        return boxes[0], embeddings[0]

    def verify(self, a: Image, b: Image, color: str = "bgr") -> Verification:
        """Same person or not: the distance between the largest face of each image, against the 1:1 threshold.
        ``color``: the channel order of array images, "bgr" or "rgb"."""
        box_a, emb_a = self.largest_face(a, _label(a, "first image"), color)
        box_b, emb_b = self.largest_face(b, _label(b, "second image"), color)
        distance = float(np.linalg.norm(emb_a - emb_b))
        threshold = self.thresholds.pair()
        return Verification(distance <= threshold, distance, threshold, box_a, box_b)

    def compare_faces(self, known, face, threshold: float | None = None) -> list[bool]:
        """Which of the ``known`` embeddings ``(n, d)`` are the same person as the embedding ``face`` ``(d,)``:
        distance at most ``threshold`` (None: this encoder's one-to-one point, what :meth:`verify` uses)."""
        limit = self.thresholds.pair() if threshold is None else float(threshold)
        return [bool(d <= limit) for d in face_distance(known, face)]

    def identify(self, image: Image, gallery, color: str = "bgr") -> list[Identity]:
        """Who each face in ``image`` is, by a gallery's enrolled samples (anything with an ``index()``:
        an open store or :class:`realtime.api.Gallery`). ``color``: an array's channel order, "bgr" or "rgb"."""
        boxes, embeddings = self.faces(image, color=color)
        return [Identity(box, m.name, m.nearest, float(m.distance))
                for box, m in zip(boxes, self.match(gallery.index(), embeddings))]


def face_distance(known, face) -> np.ndarray:
    """The Euclidean distance from each embedding of ``known`` (``(n, d)``, or one ``(d,)``) to ``face``
    ``(d,)``: the number every threshold here is compared with (0: the same; about 1.4: unrelated)."""
    known = np.asarray(known, np.float32)
    face = np.asarray(face, np.float32).reshape(-1)
    if known.ndim == 1:
        known = known[None, :]
    if known.size == 0:
        return np.zeros(0, np.float32)
    if known.ndim != 2 or known.shape[1] != face.shape[0]:
        raise UserError(f"face_distance: known embeddings of shape {known.shape} and a face of {face.shape[0]} "
                        f"numbers do not match: pass (n, d) embeddings and one (d,) embedding of the same encoder")
    return np.linalg.norm(known - face, axis=1)


def _label(image: Image, fallback: str) -> str:
    return str(image) if isinstance(image, (str, Path)) else fallback
