"""The Python API: find faces, encode them, compare two photos, identify people from a gallery.

    from realtime import api

    boxes = api.detect("group.jpg")                  # [(x, y, w, h), ...], largest first
    vectors = api.encode("group.jpg")                # one 128-number embedding per face found
    result = api.verify("ann_1.jpg", "ann_2.jpg")    # Verification(same=True, distance=0.49, threshold=0.84, ...)
    with api.Gallery("people.db") as gallery:        # an SQLite file, created on first enrollment
        gallery.enroll("Ann", ["ann_1.jpg", "ann_2.jpg"])
        for face in api.identify("group.jpg", gallery):
            print(face.box, face.name, face.distance)   # name None: nobody enrolled is that close

An image is a file path or a BGR uint8 array (what ``cv2.imread`` returns). The module functions
use the shipped encoder (``models/``) and ``config.yaml``'s detection settings; a
:class:`Recognizer` built with another ``model_dir`` or ``config`` does the same with those. The
command line (``python -m realtime enroll/identify/verify``) is a thin layer over this module.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, Union

import numpy as np

from realtime.boxes import Box
from realtime.config import DEFAULT_CONFIG_PATH, Config, load_config, resolve_path
from realtime.errors import UserError, quiet_native_output

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


def load_image(image: Image) -> np.ndarray:
    """A BGR uint8 array from a path (any common format, one-line errors) or an array (normalised)."""
    from realtime.faces import read_image, to_bgr8
    if isinstance(image, np.ndarray):
        return to_bgr8(image)
    return read_image(image)


class Recognizer:
    """A loaded encoder and the detection settings: what every call here needs, loaded once.

    ``model_dir`` None: the config's ``model.dir`` (the shipped encoder in ``models/``).
    ``config`` None: the project's ``config.yaml``; a path loads that file; a :class:`Config` is used as is.
    ``threshold`` None: the config's ``recognition.threshold``, else the one measured at training
    and written to ``encoder.json``: for a gallery, the open-set threshold for its size (0.667 for the shipped
    encoder up to 100 people: strangers named on at most 1% of faces); for ``verify``, the one-person point (0.875).
    """

    def __init__(self, model_dir: str | Path | None = None, config: Config | str | Path | None = None,
                 threshold: float | None = None):
        self.config = config if isinstance(config, Config) else load_config(config)
        from realtime.encoder import Encoder
        with quiet_native_output():  # LiteRT prints an XNNPACK line on fd 2 (shown with -v)
            self.encoder = Encoder(Path(model_dir) if model_dir is not None else resolve_path(self.config.model.dir))
        from realtime.thresholds import resolve_threshold, warn_if_uncalibrated
        self.threshold = resolve_threshold(self.encoder, self.config.recognition.threshold, threshold)
        if threshold is None and self.config.recognition.threshold is None:
            warn_if_uncalibrated(self.encoder, self.config.recognition.match)
        self.fixed_threshold = threshold    # the caller's own; None: the config's or the encoder's
        from realtime.faces import make_preprocessor
        # Landmarks and alignment as the encoder was trained (a box without a face is dropped).
        self.aligner = make_preprocessor(self.config, self.encoder.info, self.encoder.input_size)

    # -- the preprocessing seam: the only calls into realtime.faces ------------------------------------------
    def detect(self, image: Image) -> list[Box]:
        """Every face's box ``(x, y, w, h)``, largest first (config.yaml's ``detection`` settings)."""
        from realtime.faces import find_faces
        return list(find_faces(load_image(image), self.config.detection))

    def _crops(self, image: np.ndarray, boxes: Sequence[Box]) -> tuple[np.ndarray, list[Box]]:
        """The encoder's input for each box, and the boxes that gave one."""
        from realtime.faces import face_crops
        crops, kept = face_crops(image, list(boxes), self.encoder.input_size, self.aligner)
        return crops, [boxes[i] for i in kept]

    # -- embeddings --------------------------------------------------------------------------------------------
    def faces(self, image: Image, boxes: Sequence[Box] | None = None) -> tuple[list[Box], np.ndarray]:
        """The faces' boxes and their embeddings ``(n, 128)``; ``boxes`` None: every face detected."""
        pixels = load_image(image)
        if boxes is None:
            boxes = self.detect(pixels)
        crops, kept = self._crops(pixels, boxes)
        return kept, self.encoder.encode(crops)

    def encode(self, image: Image, boxes: Sequence[Box] | None = None) -> np.ndarray:
        """One embedding per face ``(n, 128)`` float32, unit length; ``boxes`` None: every face detected."""
        return self.faces(image, boxes)[1]

    def largest_face(self, image: Image, what: str = "image") -> tuple[Box, np.ndarray]:
        """The largest face's box and embedding; a UserError naming ``what`` when there is none."""
        boxes, embeddings = self.faces(image)
        if not boxes:
            raise UserError(f"{what}: no face found")
        if len(boxes) > 1:
            log.warning("%s: %d faces found, using the largest", what, len(boxes))
        return boxes[0], embeddings[0]

    # -- questions ---------------------------------------------------------------------------------------------
    def verify(self, a: Image, b: Image) -> Verification:
        """Same person or not: the distance between the largest face of each image, against the threshold."""
        box_a, emb_a = self.largest_face(a, _label(a, "first image"))
        box_b, emb_b = self.largest_face(b, _label(b, "second image"))
        distance = float(np.linalg.norm(emb_a - emb_b))
        from realtime.thresholds import resolve_threshold
        threshold = resolve_threshold(self.encoder, self.config.recognition.threshold, self.fixed_threshold, pair=True)
        return Verification(distance <= threshold, distance, threshold, box_a, box_b)

    def threshold_for(self, people: int) -> float:
        """The threshold against a gallery of ``people`` (encoder.json's open-set curve), unless one was given."""
        from realtime.thresholds import resolve_threshold
        return resolve_threshold(self.encoder, self.config.recognition.threshold, self.fixed_threshold, people)

    def identify(self, image: Image, gallery: "Gallery | str | Path") -> list[Identity]:
        """Who each face in ``image`` is, by the enrolled samples (``recognition.match``)."""
        from realtime.matching import match
        boxes, embeddings = self.faces(image)
        if isinstance(gallery, Gallery):
            index = gallery.index()
            return _identities(boxes, match(index, embeddings, self.threshold_for(len(index.names)),
                                            self.config.recognition.match))
        with Gallery(gallery, self) as opened:
            return self.identify(image, opened)


def _label(image: Image, fallback: str) -> str:
    return str(image) if isinstance(image, (str, Path)) else fallback


def _identities(boxes: Sequence[Box], matches) -> list[Identity]:
    return [Identity(tuple(int(v) for v in box), m.name, m.nearest, float(m.distance))
            for box, m in zip(boxes, matches)]


def photo_samples(recognizer: Recognizer, images: Iterable[Image], largest: bool = False,
                  read: Callable[[Image], np.ndarray | None] = load_image) -> tuple[np.ndarray, int]:
    """One embedding per image that shows exactly one face (with ``largest``: its largest face), and how
    many images were skipped (each named in a warning). ``read`` may return None to skip an image."""
    embeddings, skipped = [], 0
    for image in images:
        pixels = read(image)
        boxes, emb = ([], None) if pixels is None else recognizer.faces(pixels)
        if pixels is not None and (not boxes or (len(boxes) > 1 and not largest)):
            log.warning("%s: %s, skipped", _label(image, "an image"), "no face found" if not boxes else
                        f"{len(boxes)} faces found (--largest takes the largest)")
        if boxes and (len(boxes) == 1 or largest):
            embeddings.append(emb[0])
        else:
            skipped += 1
    return (np.stack(embeddings) if embeddings else np.zeros((0, recognizer.encoder.embedding_size), np.float32),
            skipped)


def open_store(location: str | Path, model_id: str | None, create: bool = True, watch: bool = False):
    """The gallery store at ``location``: a file or a ``postgresql://`` URL (the one place the CLI
    and the API open one).

    ``model_id`` set: samples of any other encoder are refused; None: no check (list, remove).
    ``watch``: a live process, whose index follows enrollments made by other processes."""
    from realtime.gallery import open_gallery, resolve_location
    return open_gallery(resolve_location(location), model_id, create=create, watch=watch)


class Gallery:
    """Enrolled people: names and their samples' embeddings (never photos), in an SQLite file.

    ``path`` (relative to the working directory) defaults to ``recognition.gallery`` (``~/.local/share/realtime-faces/gallery.db``);
    the file is readable by its owner only. ``recognizer`` None: the shipped encoder; the gallery
    refuses samples made by any other encoder.
    """

    def __init__(self, path: str | Path | None = None, recognizer: Recognizer | None = None):
        self.recognizer = recognizer or default_recognizer()
        from realtime.gallery import is_url, resolve_location
        if path is not None and not is_url(str(path)) and not str(path).startswith("sqlite://"):
            path = Path(path).expanduser().resolve()  # a path given here is relative to the working directory
        self.path = resolve_location(path if path is not None else self.recognizer.config.recognition.gallery)
        self._store = None
        if not isinstance(self.path, Path) or self.path.exists():  # opened (and checked) now; a new gallery
            # file is created by its first enrollment (a postgresql:// URL is always opened: it says if it is down)
            self._open()

    def _open(self):
        if self._store is None:
            self._store = open_store(self.path, self.recognizer.encoder.model_id)
        return self._store

    def enroll(self, name: str, images: Iterable[Image], largest: bool = False) -> int:
        """Add one sample per image of ``name`` (any text); returns their sample count in the gallery.

        Images with no face are skipped with a warning; so are images with several faces unless
        ``largest`` (then the largest face is the sample). At least one sample or a UserError."""
        embeddings, _ = photo_samples(self.recognizer, images, largest)
        if not len(embeddings):
            raise UserError(f"no usable face for {name!r}: nothing enrolled")
        return self.add(name, embeddings)

    def add(self, name: str, embeddings: np.ndarray) -> int:
        """Add already computed embeddings ``(n, 128)`` of this gallery's encoder to ``name``."""
        return self._open().add_samples(name, embeddings)

    def remove(self, name: str) -> int:
        """Remove a person and all their samples; returns how many samples went."""
        if self._store is None:
            raise UserError(f"gallery {self.path} does not exist: nobody to remove")
        return self._store.remove(name)

    def people(self) -> list[tuple[str, int]]:
        """``(name, sample count)`` for everyone, by name."""
        return [] if self._store is None else self._store.people()

    def index(self):
        """The matching index (rebuilt only when the gallery changed)."""
        from realtime.matching import Index
        return Index.empty() if self._store is None else self._store.index()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@functools.lru_cache(maxsize=1)
def default_recognizer() -> Recognizer:
    """The shipped encoder with the project's config.yaml, loaded on first use."""
    return Recognizer()


def detect(image: Image) -> list[Box]:
    """Every face's box ``(x, y, w, h)`` in ``image``, largest first."""
    return default_recognizer().detect(image)


def encode(image: Image, boxes: Sequence[Box] | None = None) -> np.ndarray:
    """One embedding ``(n, 128)`` per face; ``boxes`` None: every face :func:`detect` finds."""
    return default_recognizer().encode(image, boxes)


def verify(a: Image, b: Image) -> Verification:
    """Whether the largest faces of ``a`` and ``b`` are the same person (the shipped encoder's threshold)."""
    return default_recognizer().verify(a, b)


def identify(image: Image, gallery: Gallery | str | Path) -> list[Identity]:
    """Who each face in ``image`` is: a :class:`Gallery` or the path of a gallery file."""
    return default_recognizer().identify(image, gallery)


__all__ = ["Box", "DEFAULT_CONFIG_PATH", "Gallery", "UserError", "Identity", "Image", "Recognizer", "Verification",
           "default_recognizer", "detect", "encode", "identify", "load_image", "open_store", "photo_samples",
           "verify"]
