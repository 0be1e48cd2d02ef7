"""The gallery in one SQLite file, readable only by its owner: a laptop, one camera.

Each enrollment is one transaction, so a crash half-way leaves the earlier gallery intact. The
file is created at the first enrollment, never by opening (playing a video or ``identify`` with
nobody enrolled creates nothing). Opening only ever tightens the file's mode (0644 -> 0600; a
0400 file stays write-protected), and a symbolic link is followed only to an existing gallery.
Names are data (any Unicode string), never used to build a path.

The file at the path is followed, not the file once opened: deleting the gallery (which deletes
everyone) or moving another gallery onto its path is noticed by its device and inode numbers, so
a live process stops naming the deleted people, or reads the new file's.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from realtime.errors import UserError
from realtime.paths import file_identity, make_private_folders, path_state
from realtime.gallery.store import GalleryStore, StoreUnavailable

log = logging.getLogger("realtime.gallery")

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
    created REAL NOT NULL,
    source_sha256 TEXT
);
CREATE INDEX IF NOT EXISTS samples_person ON samples(person_id);
"""

# Unknown faces (realtime.gallery.unknowns), made by the first change that needs them.
UNKNOWN_SCHEMA = """
CREATE TABLE IF NOT EXISTS unknown_groups (
    id INTEGER PRIMARY KEY,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    tracks INTEGER NOT NULL,
    sources TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unknown_tracks (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES unknown_groups(id) ON DELETE CASCADE,
    key TEXT NOT NULL UNIQUE,
    embedding BLOB NOT NULL,
    model_id TEXT NOT NULL,
    source TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS unknown_tracks_group ON unknown_tracks(group_id);
CREATE TABLE IF NOT EXISTS unknown_views (
    id INTEGER PRIMARY KEY,
    track_id INTEGER NOT NULL REFERENCES unknown_tracks(id) ON DELETE CASCADE,
    seen REAL NOT NULL,
    quality REAL NOT NULL,
    embedding BLOB NOT NULL,
    crop BLOB NOT NULL,
    thumbnail BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS unknown_views_track ON unknown_views(track_id);
"""

# Added after the first galleries were made: each sample's photo (the SHA-256 of its file), NULL when
# unknown. Added to an older gallery by its first write, in that write's transaction.
SOURCE_COLUMN = "ALTER TABLE samples ADD COLUMN source_sha256 TEXT"

# The tables a gallery file must hold, with the columns the code reads and writes.
_COLUMNS = {"people": {"id", "name", "created"}, "samples": {"id", "person_id", "embedding", "model_id", "created"}}

# How long a command waits for another process's lock before saying the gallery is busy (seconds);
# the live loop's watcher waits less and retries, so it never holds anything up.
BUSY_TIMEOUT = 5.0
WATCH_BUSY_TIMEOUT = 0.5


# Numbers the connections of this process: a change token of one is never equal to another's.
_CONNECTIONS = itertools.count(1)


def _is_busy(err: sqlite3.Error) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


class SQLiteStore(GalleryStore):
    """The SQLite gallery at ``path`` (``create=False``: it must exist already)."""

    UNKNOWN_TABLES_EXIST = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'unknown_views'"

    def __init__(self, path: str | Path, model_id: str | None = None, create: bool = True, dim: int | None = None,
                 busy_timeout: float = BUSY_TIMEOUT):
        super().__init__(model_id, dim)
        self.path = Path(path)
        self.location = str(self.path)
        self._busy_timeout = busy_timeout
        self._io = threading.RLock()         # the connection's statements, one thread at a time
        self._db: sqlite3.Connection | None = None
        self._tables = False
        self._identity: tuple[int, int] | None = None   # the file the connection has open
        self._opened = 0                                 # which connection (data_version is per connection)
        self._announce = False                           # the watcher's copy says when the file went
        self._gone = False                               # the file it had open was deleted
        self._check_path(create)
        if self.path.exists():
            self._open()
        if model_id is not None:
            self.check_model()

    # -- opening -------------------------------------------------------------------------------
    def _check_path(self, create: bool) -> None:
        path = self.path
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if not target.is_file() or target.stat().st_size == 0:
                what = "does not exist" if not target.exists() else "is not a gallery"
                raise UserError(f"gallery {path} is a symbolic link to {target}, which {what}: pass --gallery "
                                f"with the gallery's real path (a link is followed only to an existing gallery)")
            self._symlink = True
        else:
            self._symlink = False
        if path.is_dir():
            raise UserError(f"gallery {path} is a folder: pass --gallery FILE")
        if path.exists() and not path.is_file():   # SQLite would put a -journal file beside a device
            raise UserError(f"gallery {path} is {path_state(path)}, not a gallery file: pass --gallery FILE")
        if not path.exists() and not create:
            raise UserError(f"gallery {path} does not exist: enroll someone first "
                            f"(python -m realtime enroll NAME PHOTO...), or pass the right --gallery")

    def _open(self) -> None:
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                       timeout=self._busy_timeout)
            self._identity, self._opened = file_identity(self.path), next(_CONNECTIONS)
            if self._gone and self._announce:
                log.warning("gallery %s is there again (a new file): following the new file", self.path)
            self._gone = False
            self._db.execute("PRAGMA foreign_keys = ON")
            self._tables = self._check_schema()
        except sqlite3.DatabaseError as err:
            if self._db is not None:
                self._db.close()
                self._db = None
            if _is_busy(err):
                raise UserError(self._busy("cannot be opened")) from None
            raise UserError(f"gallery {self.path} is not a gallery database ({err}): pass another --gallery") from None
        if self._symlink and not self._tables:
            self._db.close()
            self._db = None
            raise UserError(f"gallery {self.path} is a symbolic link to a file that is not a gallery: pass --gallery "
                            f"with the gallery's real path")
        if self._tables:  # only once it is known to be a gallery: never change another file's mode
            self._tighten_mode()

    def _check_schema(self) -> bool:
        """Whether the gallery tables are there; refuses a SQLite file of other tables (ours are
        never added to someone else's database)."""
        tables = {name for (name,) in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if not tables:
            return False
        for table, wanted in _COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if not wanted <= have:
                raise sqlite3.DatabaseError(f"it holds tables {', '.join(sorted(tables))}, not a gallery's")
        return True

    def _tighten_mode(self) -> None:
        """Take group and other permissions away; never add any (a 0400 file stays read-only)."""
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
            if mode & 0o077:
                os.chmod(self.path, mode & 0o700)
        except OSError:
            pass

    def _follow_path(self) -> None:
        """Drop the connection when the file at the path is no longer the one it has open (deleted,
        or another file moved onto the path): reads then see the file there now, or no gallery."""
        if self._db is None:
            return
        now = file_identity(self.path)
        if now == self._identity:
            return
        if self._announce:
            if now is None:
                log.warning("gallery %s was deleted: nobody is enrolled now (an enrollment creates it again)",
                            self.path)
            else:
                log.warning("gallery %s was replaced by another file: following the new file", self.path)
        self._gone = now is None
        self._close()
        self._tables = False

    def _create(self) -> bool:
        """The file (mode 0600, folders 0700) if there is none: at the first enrollment only. True
        when this call made it (the tables come in that enrollment's own transaction)."""
        self._follow_path()
        made = False
        if self._db is None:
            try:
                make_private_folders(self.path.parent)
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                made = True
            except FileExistsError:    # made meanwhile by another process
                pass
            except OSError as err:
                raise UserError(f"cannot create gallery {self.path} ({err.strerror or err}): pass --gallery "
                                f"with a file in a folder you can write") from None
            try:
                self._open()
            except BaseException:
                if made:
                    self._discard_new()
                raise
        return made

    def _discard_new(self) -> None:
        """Remove the gallery file this process just made when its first enrollment failed: no empty
        gallery is left behind (``list`` then still says it does not exist). Kept if another
        process has written to it meanwhile."""
        self._close()
        self._tables = False
        try:
            if os.stat(self.path).st_size == 0:
                for leftover in (self.path, Path(f"{self.path}-journal")):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(leftover)
        except OSError:
            pass

    def _busy(self, what: str) -> str:
        return (f"the gallery {self.path} is busy (locked by another process): it {what} now; try again when "
                f"the other program has finished")

    def _reopen(self) -> "SQLiteStore":
        other = SQLiteStore(self.path, self.model_id, create=True, dim=self.dim, busy_timeout=WATCH_BUSY_TIMEOUT)
        other._announce = True
        return other

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _interrupt(self) -> None:
        db = self._db
        if db is not None:
            try:
                db.interrupt()
            except sqlite3.ProgrammingError:   # closed meanwhile: nothing to end
                pass

    # -- reading -------------------------------------------------------------------------------
    def _read(self, sql: str, params=()) -> list:
        """Rows of a query, [] before the gallery exists; a lock held too long is StoreUnavailable."""
        with self._io:   # never inside a write another thread has open on this connection
            return self._read_now(sql, params)

    def _read_now(self, sql: str, params=()) -> list:
        if self._db is None and self.path.exists():
            self._open()
        if self._db is None:
            return []
        try:
            if not self._tables:
                self._tables = self._check_schema()
                if not self._tables:
                    return []
            return self._db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as err:
            if _is_busy(err):
                raise StoreUnavailable(self._busy("cannot be read")) from None
            raise UserError(f"gallery {self.path} cannot be read ({err}): check the file") from None

    def _version(self):
        with self._io:
            self._follow_path()
            if self._db is None and not self.path.exists():
                return None
            rows = self._read_now("PRAGMA data_version")   # changes with every commit by another connection
            return (self._identity, self._opened, rows[0][0]) if rows else None

    def _rows(self) -> list:
        where, params = ("WHERE s.model_id = ? ", (self.model_id,)) if self.model_id is not None else ("", ())
        return self._read("SELECT s.id, p.name, s.embedding FROM samples s JOIN people p ON p.id = s.person_id "
                          f"{where}ORDER BY p.name, s.id", params)

    def _foreign_model(self) -> str | None:
        rows = self._read("SELECT DISTINCT model_id FROM samples WHERE model_id != ?", (self.model_id,))
        return rows[0][0] if rows else None

    def _stored_dim(self) -> int | None:
        rows = self._read("SELECT length(embedding) / 4, COUNT(*) FROM samples WHERE typeof(embedding) = 'blob' "
                          "GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
        return int(rows[0][0]) if rows else None

    def _has_source_column(self) -> bool:
        return any(row[1] == "source_sha256" for row in self._read("PRAGMA table_info(samples)"))

    def people(self) -> list[tuple[str, int]]:
        return [(n, int(c)) for n, c in self._read(
            "SELECT p.name, COUNT(s.id) FROM people p LEFT JOIN samples s ON s.person_id = p.id "
            "GROUP BY p.id ORDER BY p.name")]

    def dump(self) -> Iterator[tuple[str, bytes, str, float, str | None]]:
        source = "s.source_sha256" if self._has_source_column() else "NULL"
        yield from self._read(f"SELECT p.name, s.embedding, s.model_id, s.created, {source} FROM samples s "
                              "JOIN people p ON p.id = s.person_id ORDER BY p.name, s.id")

    # -- writing -------------------------------------------------------------------------------
    def _write(self, work, failed: str, hint: str):
        """Run ``work(db)`` in one IMMEDIATE transaction, with the tables if they are not there yet
        (all or nothing: a first enrollment that fails leaves no gallery); every failure is a
        one-line UserError."""
        with self._io:   # one transaction at a time on this connection (a background enrollment, a read)
            return self._write_now(work, failed, hint)

    def _write_now(self, work, failed: str, hint: str):
        made = self._create()
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            fresh = not self._tables and not self._check_schema()
            if fresh:
                _run_script(db, SCHEMA)
            result = work(db)
            db.execute("COMMIT")
            if fresh:
                self._tables = True
                self._tighten_mode()
            return result
        except BaseException as err:
            if db.in_transaction:  # SQLite may have rolled back already (a full disk does)
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            if made:
                self._discard_new()
            if isinstance(err, sqlite3.Error):
                if _is_busy(err):
                    raise UserError(self._busy(f"cannot be written: {failed}")) from None
                raise UserError(f"gallery {self.path} cannot be written ({err}): {failed}; {hint}") from None
            raise

    def _insert(self, name: str, emb: np.ndarray, model_id: str, created: float,
                sources: list[str | None] | None = None, replace: bool = False) -> int:
        sources = sources or [None] * len(emb)

        def work(db):
            _add_source_column(db)
            db.execute("INSERT OR IGNORE INTO people(name, created) VALUES (?, ?)", (name, created))
            (person_id,) = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if replace:   # the person afresh: the old samples go in the same transaction as the new come
                db.execute("DELETE FROM samples WHERE person_id = ?", (person_id,))
            db.executemany("INSERT INTO samples(person_id, embedding, model_id, created, source_sha256) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(person_id, row.tobytes(), model_id, created, src) for row, src in zip(emb, sources)])
            (count,) = db.execute("SELECT COUNT(*) FROM samples WHERE person_id = ?", (person_id,)).fetchone()
            return int(count)
        return self._write(work, f"nothing of {name!r} was saved, the gallery is as before",
                           "free disk space or pass --gallery in a writable folder")

    def _delete(self, name: str) -> int | None:
        if self._db is None:
            return None

        def work(db):
            row = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            (count,) = db.execute("SELECT COUNT(*) FROM samples WHERE person_id = ?", row).fetchone()
            db.execute("DELETE FROM samples WHERE person_id = ?", row)
            db.execute("DELETE FROM people WHERE id = ?", row)
            return int(count)
        return self._write(work, f"{name!r} was not removed", "check the disk and the file's permissions")

    def _write_unknowns(self, work, failed: str):
        return self._write(work, failed, "check the disk and the file's permissions")

    def _make_unknown_tables(self, tx) -> None:
        if tx.execute(self.UNKNOWN_TABLES_EXIST).fetchone() is None:
            _run_script(tx, UNKNOWN_SCHEMA)

    def load(self, rows: list[tuple[str, bytes, str, float, str | None]]) -> None:
        def work(db):
            _add_source_column(db)
            for name, blob, model_id, created, _ in rows:
                db.execute("INSERT OR IGNORE INTO people(name, created) VALUES (?, ?)", (name, created))
            ids = dict(db.execute("SELECT name, id FROM people"))
            db.executemany("INSERT INTO samples(person_id, embedding, model_id, created, source_sha256) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(ids[name], blob, model_id, created, src) for name, blob, model_id, created, src in rows])
        self._write(work, "nothing was copied", "free disk space or copy into a writable folder")
        self._changed()


def _run_script(db, script: str) -> None:
    """Each statement of ``script`` (split on ``;``) on ``db``, in the caller's transaction
    (``executescript`` would commit it first)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _add_source_column(db: sqlite3.Connection) -> None:
    """Give a gallery made before ``source_sha256`` existed the column, inside the caller's write
    transaction (SQLite's ALTER TABLE is transactional: a failed write leaves the file as it was)."""
    if not any(row[1] == "source_sha256" for row in db.execute("PRAGMA table_info(samples)")):
        db.execute(SOURCE_COLUMN)
