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
use the shipped encoder (``models/``) and ``config.yaml``; a :class:`Recognizer` built with another
``model_dir`` or ``config`` does the same with those. The command line (``python -m realtime
enroll/identify/verify``) is a thin layer over this module.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from realtime.boxes import Box
from realtime.config import DEFAULT_CONFIG_PATH
from realtime.errors import UserError
from realtime.images import load_image
from realtime.recognizer import Identity, Image, Recognizer, Verification

log = logging.getLogger("realtime")


def photo_samples(recognizer: Recognizer, images: Iterable[Image], largest: bool = False,
                  read: Callable[[Image], np.ndarray | None] = load_image) -> tuple[np.ndarray, int]:
    """One embedding per image that shows exactly one face (with ``largest``: its largest face), and how
    many images were skipped (each named in a warning). ``read`` may return None to skip an image."""
    embeddings, skipped = [], 0
    for image in images:
        pixels = read(image)
        boxes, emb = ([], None) if pixels is None else recognizer.faces(pixels)
        if pixels is not None and (not boxes or (len(boxes) > 1 and not largest)):
            log.warning("%s: %s, skipped", image if isinstance(image, (str, Path)) else "an image", "no face found" if not boxes else
                        f"{len(boxes)} faces found (--largest takes the largest)")
        if boxes and (len(boxes) == 1 or largest):
            embeddings.append(emb[0])
        else:
            skipped += 1
    return (np.stack(embeddings) if embeddings else np.zeros((0, recognizer.encoder.embedding_size), np.float32),
            skipped)


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

    def enroll(self, name: str, images: Iterable[Image], largest: bool = False) -> int:
        """Add one sample per image of ``name`` (any text); returns their sample count in the gallery.

        Images with no face are skipped with a warning; so are images with several faces unless
        ``largest`` (then the largest face is the sample). At least one sample or a UserError."""
        embeddings, _ = photo_samples(self.recognizer, images, largest)
        if not len(embeddings):
            raise UserError(f"no usable face for {name!r}: nothing enrolled")
        return self.add(name, embeddings)

    def add(self, name: str, embeddings: np.ndarray) -> int:
        """Add already computed embeddings ``(n, d)`` of this gallery's encoder to ``name``."""
        return self._open().add_samples(name, embeddings)

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


def detect(image: Image) -> list[Box]:
    """Every face's box ``(x, y, w, h)`` in ``image``, largest first."""
    return default_recognizer().detect(image)


def encode(image: Image, boxes: Sequence[Box] | None = None) -> np.ndarray:
    """One embedding ``(n, d)`` per face; ``boxes`` None: every face :func:`detect` finds."""
    return default_recognizer().encode_image(image, boxes)


def verify(a: Image, b: Image) -> Verification:
    """Whether the largest faces of ``a`` and ``b`` are the same person (the shipped encoder's threshold)."""
    return default_recognizer().verify(a, b)


def identify(image: Image, gallery: Gallery | str | Path) -> list[Identity]:
    """Who each face in ``image`` is: a :class:`Gallery` or the location of one (none there: everyone is unknown)."""
    if isinstance(gallery, Gallery):
        return gallery.recognizer.identify(image, gallery)
    with Gallery(gallery) as opened:
        return opened.recognizer.identify(image, opened)


__all__ = ["Box", "DEFAULT_CONFIG_PATH", "Gallery", "UserError", "Identity", "Image", "Recognizer", "Verification",
           "default_recognizer", "detect", "encode", "identify", "load_image", "photo_samples", "verify"]
