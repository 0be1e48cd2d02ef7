"""The Python API: find faces, encode them, compare two photos, identify people from a gallery.

    from realtime import api

    boxes = api.detect("group.jpg")                  # [(x, y, w, h), ...], largest first
    vectors = api.encode("group.jpg")                # one 128-number embedding per face found
    result = api.verify("ann_1.jpg", "ann_2.jpg")    # Verification(same=True, distance=0.49, threshold=0.84, ...)
    with api.Gallery("people.db") as gallery:        # an SQLite file, created on first enrollment
        gallery.enroll("Ann", ["ann_1.jpg", "ann_2.jpg"])
        for face in api.identify("group.jpg", gallery):
            print(face.box, face.name, face.distance)   # name None: nobody enrolled is that close

An image is a file path, a PIL image, or a uint8 array whose channel order ``color`` names: "bgr"
(OpenCV's, what ``cv2.imread`` returns: the default) or "rgb" (PIL, matplotlib, imageio,
face_recognition's ``load_image_file``): ``api.identify(rgb_array, gallery, color="rgb")``. An RGB
array read as BGR gives no error, only worse answers. Embeddings compare with
:func:`face_distance` and :func:`compare_faces`, as face_recognition's do (the threshold is this
encoder's, not 0.6). The module functions use the shipped encoder (``models/``) and
``config.yaml``; a :class:`Recognizer` built with another ``model_dir`` or ``config`` does the same
with those. The command line (``python -m realtime enroll/identify/verify``) is a thin layer over
this module.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable, Sequence

import numpy as np

from realtime.boxes import Box
from realtime.config import DEFAULT_CONFIG_PATH
from realtime.errors import UserError
from realtime.names import check_name
from realtime.images import UnreadableImage, load_image, pixels_sha256, read_photo
from realtime.recognizer import (LANDMARK_NAMES, Identity, Image, Recognizer, Verification, face_distance,
                                 named_points)

log = logging.getLogger("realtime")


@dataclass(frozen=True)
class PhotoSamples:
    """What photos give to enroll: one embedding per usable photo, each with the photo it came from."""

    embeddings: np.ndarray     # (n, d)
    sources: list[str]         # each sample's photo: the SHA-256 of its file (of its pixels for an array)
    skipped: int               # photos with no face, several faces (without largest), or unreadable
    duplicates: int            # photos already enrolled for the person, or given twice


def photo_samples(recognizer: Recognizer, images: Iterable[Image], largest: bool = False, color: str = "bgr",
                  enrolled: Collection[str] = frozenset(), skip_unreadable: bool = False) -> PhotoSamples:
    """One embedding per image that shows exactly one face (with ``largest``: its largest face); the
    others are skipped, each named in a warning. An image is a path, a PIL image or an array in the
    channel order ``color`` ("bgr", OpenCV's, or "rgb"). A photo in ``enrolled`` (SHA-256s, from
    :meth:`Gallery.sources`) or given twice is skipped and said, before any face is looked for.
    ``skip_unreadable``: a file that cannot be read is a warning, not an error."""
    embeddings, sources, skipped, duplicates = [], [], 0, 0
    seen = set(enrolled)
    for image in images:
        label = str(image) if isinstance(image, (str, Path)) else "an image"
        try:
            pixels, source = _read_with_source(recognizer, image, color)
        except UnreadableImage as err:
            if not skip_unreadable:
                raise
            log.warning("%s", err)
            skipped += 1
            continue
        if source in seen:
            log.debug("%s: the same photo is already enrolled for this person, skipped", label)   # counted in the summary
            duplicates += 1
            continue
        boxes, emb = recognizer.faces(pixels)
        if not boxes or (len(boxes) > 1 and not largest):
            log.warning("%s: %s, skipped", label, "no face found" if not boxes else
                        f"{len(boxes)} faces found (--largest takes the largest)")
            skipped += 1
            continue
        seen.add(source)
        embeddings.append(emb[0])
        sources.append(source)
    stacked = np.stack(embeddings) if embeddings else np.zeros((0, recognizer.encoder.embedding_size), np.float32)
    return PhotoSamples(stacked, sources, skipped, duplicates)


def _read_with_source(recognizer: Recognizer, image: Image, color: str) -> tuple[np.ndarray, str]:
    """The pixels, and what identifies the photo: its file's SHA-256, or its pixels' for an array or PIL image."""
    if isinstance(image, (str, Path)):
        photo = read_photo(image, recognizer.config.detection)
        return photo.pixels, photo.sha256
    pixels = recognizer.load(image, color)
    return pixels, pixels_sha256(pixels)


class Gallery:
    """Enrolled people: names and their samples' embeddings (never photos), in an SQLite file or
    a PostgreSQL database.

    ``path`` (a file relative to the working directory, ``sqlite:///ABS/PATH`` or a
    ``postgresql://`` URL) defaults to ``recognition.gallery``
    (``~/.local/share/realtime-faces/gallery.db``); a file is readable by its owner only.
    ``recognizer`` None: the shipped encoder; the gallery refuses samples made by any other encoder.
    ``create`` False: a gallery that does not exist is an error (a new SQLite file is otherwise
    created by its first enrollment).
    """

    def __init__(self, path: str | Path | None = None, recognizer: Recognizer | None = None, create: bool = True):
        from realtime.gallery import configured_location, open_gallery, parse_location
        self.recognizer = recognizer or default_recognizer()
        self.path = parse_location(path) if path is not None else configured_location(self.recognizer.config)
        self._store = None
        if not isinstance(self.path, Path) or self.path.exists() or not create:
            # opened (and checked) now; a new gallery file is created by its first enrollment (a
            # postgresql:// URL is always opened: it says if it is down)
            self._store = open_gallery(self.path, self.recognizer.encoder.model_id, create=create)

    def _open(self):
        if self._store is None:
            from realtime.gallery import open_gallery
            self._store = open_gallery(self.path, self.recognizer.encoder.model_id)
        return self._store

    def enroll(self, name: str, images: Iterable[Image], largest: bool = False, color: str = "bgr",
               replace: bool = False) -> int:
        """Add one sample per image of ``name`` (any text); returns their sample count in the gallery.

        An image is a path, a PIL image or an array in the channel order ``color`` ("bgr", OpenCV's,
        or "rgb"). Images with no face are skipped with a warning; so are images with several faces
        unless ``largest`` (then the largest face is the sample). A photo already enrolled for
        ``name`` (the same file, or the same pixels) is skipped: enrolling a folder again adds only
        its new photos. ``replace``: ``name`` starts afresh, their earlier samples removed in the same
        transaction. At least one new sample (or every photo already enrolled), else a UserError."""
        samples = photo_samples(self.recognizer, images, largest, color=color,
                                enrolled=set() if replace else self.sources(name))
        if not len(samples.embeddings):
            if samples.duplicates:
                return dict(self.people()).get(check_name(name), 0)   # all there already: nothing to add
            raise UserError(f"no usable face for {name!r}: nothing enrolled")
        return self.add(name, samples.embeddings, samples.sources, replace)

    def add(self, name: str, embeddings: np.ndarray, sources: Sequence[str | None] | None = None,
            replace: bool = False) -> int:
        """Add already computed embeddings ``(n, d)`` of this gallery's encoder to ``name``; ``sources``: each
        one's photo (SHA-256, or None); ``replace``: ``name``'s earlier samples go in the same transaction."""
        return self._open().add_samples(name, embeddings, sources, replace)

    def sources(self, name: str) -> set[str]:
        """The photos already enrolled for ``name``, as SHA-256s (see :class:`PhotoSamples`)."""
        return set() if self._store is None else self._store.sources(check_name(name))

    def remove(self, name: str) -> int:
        """Remove a person and all their samples; returns how many samples went."""
        if self._store is None:
            raise UserError(f"gallery {self.path} does not exist: nobody to remove")
        return self._store.remove(name)

    def people(self) -> list[tuple[str, int]]:
        """``(name, sample count)`` for everyone, by name."""
        return [] if self._store is None else self._store.people()

    # -- unknown faces (kept by the live program with recognition.collect_unknown) ------------------
    def unknowns(self) -> list:
        """The unknown groups (:class:`realtime.gallery.unknowns.Group`: id, views, tracks,
        first_seen, last_seen, sources), by id."""
        return [] if self._store is None else self._store.unknowns.groups()

    def unknown_sheet(self, group_id: int, path: str | Path | None = None) -> np.ndarray:
        """A group's contact sheet (its views' thumbnails, best first) as a BGR image; with ``path``
        also written there as a PNG (by temp file and rename)."""
        from realtime.unknowns.sheet import group_sheet, write_png
        sheet, _ = group_sheet(self._existing().unknowns, group_id)
        if path is not None:
            write_png(path, sheet, "path")
        return sheet

    def name_unknown(self, group_id: int, name: str) -> int:
        """Enroll the group's best views as ``name`` (added to them if enrolled) and remove the group, in
        one transaction; returns the person's sample count."""
        store = self._existing()
        return store.unknowns.name(group_id, name, self.recognizer.config.unknowns.name_views)[1]

    def forget_unknowns(self, group_ids: Sequence[int] = (), everything: bool = False,
                        older_than_days: float | None = None) -> int:
        """Remove unknown groups: by id, all of them, or those last seen more than ``older_than_days``
        days ago; returns how many went."""
        if sum([bool(group_ids), everything, older_than_days is not None]) != 1:
            raise UserError("forget_unknowns takes group ids, everything=True or older_than_days: one of the three")
        return self._existing().unknowns.forget(
            group_ids, everything, None if older_than_days is None else older_than_days * 86400)

    def _existing(self):
        if self._store is None:
            raise UserError(f"gallery {self.path} does not exist: no unknown faces")
        return self._store

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


def detect(image: Image, color: str = "bgr") -> list[Box]:
    """Every face's box ``(x, y, w, h)`` in ``image``, largest first. ``image``: a path, a PIL image, or an
    array in the channel order ``color``: "bgr" (OpenCV's, the default) or "rgb" (PIL, face_recognition)."""
    return default_recognizer().detect(image, color)


def encode(image: Image, boxes: Sequence[Box] | None = None, color: str = "bgr") -> np.ndarray:
    """One embedding ``(n, d)`` per face; ``boxes`` None: every face :func:`detect` finds. ``image``: a path,
    a PIL image, or an array in the channel order ``color``: "bgr" (OpenCV's, the default) or "rgb"."""
    return default_recognizer().encode_image(image, boxes, color)


def landmarks(image: Image, boxes: Sequence[Box] | None = None, color: str = "bgr") -> list[dict]:
    """The five landmarks of each face, the points its crop is aligned on: one dict per face with its
    ``box`` and ``right_eye``, ``left_eye``, ``nose``, ``mouth_right``, ``mouth_left`` as ``(x, y)`` image
    pixels (the person's right eye is on the image's left). ``boxes`` None: every face :func:`detect` finds
    that holds a face. ``image``: a path, a PIL image, or an array in the channel order ``color``: "bgr"
    (OpenCV's, the default) or "rgb"."""
    kept, points = default_recognizer().landmarks(image, boxes, color)
    return [named_landmarks(box, p) for box, p in zip(kept, points)]


def named_landmarks(box: Box, points: np.ndarray) -> dict:
    """``{"box": box, "right_eye": (x, y), ...}`` from ``(5, 2)`` points in ``LANDMARK_NAMES`` order."""
    return {"box": tuple(box), **named_points(points)}


def verify(a: Image, b: Image, color: str = "bgr") -> Verification:
    """Whether the largest faces of ``a`` and ``b`` are the same person (the shipped encoder's one-to-one
    threshold). Each is a path, a PIL image, or an array in the channel order ``color``: "bgr" (OpenCV's,
    the default) or "rgb"."""
    return default_recognizer().verify(a, b, color)


def compare_faces(known, face, threshold: float | None = None) -> list[bool]:
    """For each embedding of ``known`` (``(n, d)``, from :func:`encode`), whether ``face`` (one ``(d,)``
    embedding) is the same person: distance at most ``threshold``, None: the shipped encoder's one-to-one
    point (what :func:`verify` uses; face_recognition's 0.6 means nothing to this encoder)."""
    return default_recognizer().compare_faces(known, face, threshold)


def identify(image: Image, gallery: Gallery | str | Path, color: str = "bgr") -> list[Identity]:
    """Who each face in ``image`` is: a :class:`Gallery` or the location of one (none there: everyone is unknown).
    ``image``: a path, a PIL image, or an array in the channel order ``color``: "bgr" (OpenCV's, the default)
    or "rgb" (PIL, face_recognition)."""
    if isinstance(gallery, Gallery):
        return gallery.recognizer.identify(image, gallery, color)
    with Gallery(gallery) as opened:
        return opened.recognizer.identify(image, opened, color)


__all__ = ["Box", "DEFAULT_CONFIG_PATH", "Gallery", "UserError", "Identity", "Image", "LANDMARK_NAMES", "Recognizer",
           "Verification", "compare_faces", "default_recognizer", "detect", "encode", "face_distance", "identify",
           "landmarks", "load_image", "named_landmarks", "PhotoSamples", "photo_samples", "verify"]
