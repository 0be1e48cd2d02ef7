"""Enrolled people, behind one store interface: a SQLite file (one machine) or a PostgreSQL
database (many cameras sharing one gallery).

``open_gallery(location)`` takes a file path, ``sqlite:///ABSOLUTE/PATH`` or
``postgresql://USER@HOST:PORT/DATABASE`` (what the URL leaves out comes from the ``PG*``
environment variables). Every store keeps the same rules: one transaction per enrollment, each
sample tagged with the encoder that made it (another encoder's samples are refused), damaged
samples named and left out, errors as one line that says what to do.
"""
from __future__ import annotations

from pathlib import Path

from realtime.gallery.postgres import PostgresGallery, is_url
from realtime.gallery.sqlite import Gallery
from realtime.gallery.store import GalleryStore, StoreUnavailable
from realtime.names import MAX_NAME_LENGTH, check_name
from realtime.urls import mask_url

__all__ = ["Gallery", "GalleryStore", "PostgresGallery", "StoreUnavailable", "open_gallery", "describe",
           "resolve_location", "is_url", "check_name", "MAX_NAME_LENGTH"]


def open_gallery(location: str | Path, model_id: str | None = None, *, create: bool = True, dim: int | None = None,
                 watch: bool = False) -> GalleryStore:
    """The gallery at ``location``. ``create=False``: it must exist (``list``, ``identify``,
    ``remove``); otherwise a missing SQLite file is created at the first enrollment. ``watch``:
    a live process, whose index follows changes made by other processes (see ``GalleryStore.watch``)."""
    text = str(location)
    if is_url(text):
        gallery: GalleryStore = PostgresGallery(text, model_id, create=create, dim=dim)
    else:
        path = Path(text[len("sqlite://"):] if text.startswith("sqlite://") else text).expanduser()
        gallery = Gallery(path, model_id, create=create, dim=dim)
    if watch:
        try:
            gallery.watch()
        except BaseException:
            gallery.close()
            raise
    return gallery


def resolve_location(value: str | Path) -> str | Path:
    """A URL as it is; a path with ``~`` and ``$VARS`` expanded, relative to the project (as config paths)."""
    text = str(value)
    if is_url(text) or text.startswith("sqlite://"):
        return text
    from realtime.config import resolve_path
    return resolve_path(text)


def describe(location: str | Path) -> str:
    """``location`` as it may be shown: a URL's password masked."""
    return mask_url(str(location))
