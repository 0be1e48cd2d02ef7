"""Enrolled people on disk: one SQLite file, readable only by its owner.

Each enrollment is one transaction, so a crash half-way leaves the earlier gallery intact. Every
sample records the encoder that made it (sha256 of the .tflite): embeddings of different models
are not comparable, so a gallery holding another encoder's samples is refused. Names are data
(any Unicode string), never used to build a path.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from realtime.errors import UserError
from realtime.matching import Index

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    model_id TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_person ON samples(person_id);
"""


# The longest name a person may have (characters); the name prompt of the live window stops here too.
MAX_NAME_LENGTH = 64

# The tables a gallery file must hold, with the columns the code reads and writes.
_COLUMNS = {"people": {"id", "name", "created"}, "samples": {"id", "person_id", "embedding", "model_id", "created"}}


def check_name(name: str) -> str:
    """The name as stored (stripped), or a UserError saying what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("a person's name must not be empty: give a name, e.g. \"Ann Lee\"")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UserError(f"name {name!r} contains control characters: use printable characters only")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise UserError(f"name {name[:20]!r}... is {len(name)} characters long: use at most {MAX_NAME_LENGTH}")
    return name


_check_name = check_name


class Gallery:
    """The people table, the samples table, and a cached matching :class:`Index`.

    ``model_id`` set: samples from any other encoder make opening fail (enroll, match).
    ``model_id`` None: no check (``list`` and ``remove`` work on any gallery).
    """

    def __init__(self, path: str | Path, model_id: str | None = None, create: bool = True):
        self.path = Path(path)
        self.model_id = model_id
        if not self.path.exists():
            if not create:
                raise UserError(f"gallery {self.path} does not exist: enroll someone first")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as err:
                raise UserError(f"cannot create gallery {self.path} ({err.strerror or err}): pass --gallery "
                                f"with a file in a folder you can write") from None
        elif self.path.is_dir():
            raise UserError(f"gallery {self.path} is a folder: pass --gallery FILE")
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._check_schema()
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as err:
            if hasattr(self, "_db"):
                self._db.close()
            raise UserError(f"gallery {self.path} is not a gallery database ({err}): pass another --gallery") from None
        try:  # only once it is known to be a gallery: never change another file's mode
            os.chmod(self.path, 0o600)
        except OSError:
            pass
        self._index: Index | None = None
        self._data_version = None
        if model_id is not None:
            self.check_model()

    def _check_schema(self) -> None:
        """Refuse a SQLite file that holds other tables: never add ours to someone else's database."""
        tables = {name for (name,) in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if not tables:
            return  # a new (empty) file: the schema is created next
        for table, wanted in _COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if not wanted <= have:
                raise sqlite3.DatabaseError(f"it holds tables {', '.join(sorted(tables))}, not a gallery's")

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def check_model(self) -> None:
        others = [row[0] for row in self._db.execute(
            "SELECT DISTINCT model_id FROM samples WHERE model_id != ?", (self.model_id,))]
        if others:
            raise UserError(
                f"gallery {self.path} holds samples made by another encoder ({others[0][:12]}...); embeddings of "
                f"different models are not comparable: re-enroll everyone (remove them with "
                f"`python -m realtime remove NAME`, or use a new --gallery)")

    def add_samples(self, name: str, embeddings: np.ndarray) -> int:
        """Add samples to ``name`` (created if new) in one transaction; returns the person's sample count."""
        if self.model_id is None:
            raise ValueError("a gallery opened without a model id cannot take samples")
        name = _check_name(name)
        emb = np.asarray(embeddings, np.float32)
        if emb.ndim != 2 or len(emb) == 0:
            raise ValueError("embeddings must be a non-empty (n, d) array")
        now = time.time()
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR IGNORE INTO people(name, created) VALUES (?, ?)", (name, now))
            (person_id,) = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            db.executemany("INSERT INTO samples(person_id, embedding, model_id, created) VALUES (?, ?, ?, ?)",
                           [(person_id, row.tobytes(), self.model_id, now) for row in emb])
            (count,) = db.execute("SELECT COUNT(*) FROM samples WHERE person_id = ?", (person_id,)).fetchone()
            db.execute("COMMIT")
        except BaseException as err:
            if db.in_transaction:  # SQLite may have rolled back already (a full disk does)
                db.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise UserError(f"gallery {self.path} cannot be written ({err}): nothing of {name!r} was saved, "
                                f"the gallery is as before; free disk space or pass --gallery in a "
                                f"writable folder") from None
            raise
        self._index = None
        return int(count)

    def remove(self, name: str) -> int:
        """Remove a person and their samples; returns how many samples went, raises if unknown."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                raise UserError(f"no person named {name!r} in gallery {self.path}")
            (count,) = db.execute("SELECT COUNT(*) FROM samples WHERE person_id = ?", row).fetchone()
            db.execute("DELETE FROM samples WHERE person_id = ?", row)
            db.execute("DELETE FROM people WHERE id = ?", row)
            db.execute("COMMIT")
        except UserError:
            raise
        except BaseException as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise UserError(f"gallery {self.path} cannot be written ({err}): {name!r} was not removed; "
                                f"check the disk and the file's permissions") from None
            raise
        self._index = None
        return int(count)

    def people(self) -> list[tuple[str, int]]:
        """``(name, sample count)`` for everyone, by name."""
        return [(n, int(c)) for n, c in self._db.execute(
            "SELECT p.name, COUNT(s.id) FROM people p LEFT JOIN samples s ON s.person_id = p.id "
            "GROUP BY p.id ORDER BY p.name")]

    def index(self) -> Index:
        """The matching index, rebuilt only when the gallery changed (here or in another process)."""
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        if self._index is None or version != self._data_version:
            self._index = self._build_index()
            self._data_version = version
        return self._index

    def _build_index(self) -> Index:
        if self.model_id is not None:
            self.check_model()
        rows = self._db.execute(
            "SELECT p.name, s.embedding FROM samples s JOIN people p ON p.id = s.person_id ORDER BY p.name, s.id"
        ).fetchall()
        names: list[str] = []
        labels: list[int] = []
        for name, _ in rows:
            if not names or names[-1] != name:
                names.append(name)
            labels.append(len(names) - 1)
        if not rows:
            return Index.empty()
        emb = np.stack([np.frombuffer(blob, np.float32) for _, blob in rows])
        log.debug("gallery index rebuilt: %d samples of %d people", len(rows), len(names))
        return Index.build(emb, labels, names)
