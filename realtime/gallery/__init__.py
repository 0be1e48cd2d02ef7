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

from realtime.gallery.postgres import PostgresStore, is_url
from realtime.gallery.sqlite import SQLiteStore
from realtime.gallery.store import GalleryStore, StoreUnavailable
from realtime.names import MAX_NAME_LENGTH, check_name
from realtime.urls import mask_url

__all__ = ["SQLiteStore", "GalleryStore", "PostgresStore", "StoreUnavailable", "open_gallery", "shown_location",
           "parse_location", "configured_location", "is_url", "check_name", "MAX_NAME_LENGTH"]


# What keeps a gallery: a postgresql:// URL's server, else an SQLite file. Another store is one
# GalleryStore subclass and one entry here (and its URL scheme in parse_location).
STORES: dict[str, type[GalleryStore]] = {"sqlite": SQLiteStore, "postgresql": PostgresStore}


def parse_location(value: str | Path, base: Path | None = None) -> str | Path:
    """Where a gallery is: a ``postgresql://`` URL as it is, else an absolute file path.

    ``sqlite:///ABSOLUTE/PATH`` and plain paths give the path, ``~`` and ``$VARS`` expanded; a
    relative path is relative to ``base`` (the project, for ``recognition.gallery`` in a settings
    file, whose ``$VARS`` are expanded too) or, when None, to the working directory (``--gallery`` and the Python API). The one
    place a gallery location is read: every command and the API go through it."""
    text = str(value)
    if is_url(text):
        return text
    path = text[len("sqlite://"):] if text.startswith("sqlite://") else text
    if base is not None:
        from realtime.config import resolve_path
        return resolve_path(path, base)
    return Path(path).expanduser().absolute()  # the shell expanded a flag's $VARS already


def configured_location(config) -> str | Path:
    """``recognition.gallery`` of a loaded config (relative to the project, like every config path)."""
    from realtime.config import PROJECT_ROOT
    return parse_location(config.recognition.gallery, PROJECT_ROOT)


def open_gallery(location: str | Path, model_id: str | None = None, *, create: bool = True, dim: int | None = None,
                 watch: bool = False) -> GalleryStore:
    """The gallery at ``location`` (see :func:`parse_location`; a relative path is taken from the
    working directory). ``create=False``: it must exist (``list``, ``identify``, ``remove``);
    otherwise a missing SQLite file is created at the first enrollment. ``watch``: a live process,
    whose index follows changes made by other processes (see ``GalleryStore.watch``)."""
    where = parse_location(location)
    store = STORES["postgresql" if isinstance(where, str) else "sqlite"]
    gallery: GalleryStore = store(where, model_id, create=create, dim=dim)
    if watch:
        try:
            gallery.watch()
        except BaseException:
            gallery.close()
            raise
    return gallery


def shown_location(location: str | Path) -> str:
    """``location`` as it may be shown: a URL's password masked."""
    return mask_url(str(location))
