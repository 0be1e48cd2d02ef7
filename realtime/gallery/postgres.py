"""The gallery in PostgreSQL: one gallery shared by many cameras on many machines.

The same tables as the SQLite file (people, samples with the encoder identity), plus a one-row
``gallery_state`` whose counter every write transaction raises: taking its row lock first makes
concurrent enrollments queue instead of racing, and the counter (with a ``NOTIFY`` on commit)
tells live processes that the gallery changed, so they rebuild their local index; matching never
crosses the network. The password of a URL never appears in a message or a log line.

Every wait is bounded, as SQLite's busy timeout bounds a command's: a lock another session holds
for over ``LOCK_TIMEOUT`` s makes a statement fail with "busy", a statement the server works on for
over ``STATEMENT_TIMEOUT`` s is cancelled by the server, and a server that stops answering
altogether (a network partition, a stopped process) is cut off by the client after
``ANSWER_TIMEOUT`` s (:mod:`realtime.gallery.deadline`); TCP keepalives find a dead idle link.
Each ends in one line that says whether anything was saved.
"""
from __future__ import annotations

import logging
import re
import threading
from typing import Iterator

import numpy as np

from realtime.errors import UserError
from realtime.gallery.deadline import Deadline
from realtime.gallery.store import GalleryStore, StoreUnavailable
from realtime.urls import mask_url, url_passwords

log = logging.getLogger("realtime.gallery")

CHANNEL = "realtime_gallery"
CONNECT_TIMEOUT = 5        # seconds before a server that does not answer is reported down
LOCK_TIMEOUT = 5.0         # another session's lock held longer: "busy" (SQLite's busy timeout is 5 s too)
STATEMENT_TIMEOUT = 10.0   # the server cancels a statement that runs longer
ANSWER_TIMEOUT = 12.0      # the client gives up on a server that does not answer at all
BULK_TIMEOUT = 120.0       # the same two for reading or copying a whole gallery (100,000 samples: 1.4 s here)
# TCP keepalives (seconds): an idle connection whose server vanished is noticed within ~11 s; and
# data the server never acknowledges fails the connection after ANSWER_TIMEOUT. A URL's own values win.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
              "tcp_user_timeout": int(ANSWER_TIMEOUT * 1000)}

SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    id BIGSERIAL PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    embedding BYTEA NOT NULL,
    model_id TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    source_sha256 TEXT
);
CREATE INDEX IF NOT EXISTS samples_person ON samples(person_id);
CREATE TABLE IF NOT EXISTS gallery_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO gallery_state VALUES (1, 0) ON CONFLICT DO NOTHING;
"""
# Unknown faces (realtime.gallery.unknowns), made by the first change that needs them.
UNKNOWN_SCHEMA = """
CREATE TABLE IF NOT EXISTS unknown_groups (
    id BIGSERIAL PRIMARY KEY,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    tracks BIGINT NOT NULL,
    sources TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unknown_tracks (
    id BIGSERIAL PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES unknown_groups(id) ON DELETE CASCADE,
    key TEXT NOT NULL UNIQUE,
    embedding BYTEA NOT NULL,
    model_id TEXT NOT NULL,
    source TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS unknown_tracks_group ON unknown_tracks(group_id);
CREATE TABLE IF NOT EXISTS unknown_views (
    id BIGSERIAL PRIMARY KEY,
    track_id BIGINT NOT NULL REFERENCES unknown_tracks(id) ON DELETE CASCADE,
    seen DOUBLE PRECISION NOT NULL,
    quality DOUBLE PRECISION NOT NULL,
    embedding BYTEA NOT NULL,
    crop BYTEA NOT NULL,
    thumbnail BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS unknown_views_track ON unknown_views(track_id);
"""
_TABLES = ("people", "samples", "gallery_state")
# Added after the first galleries were made: each sample's photo (the SHA-256 of its file), NULL when
# unknown. Added to an older gallery by its first write, in that write's transaction (only the
# tables' owner may: another role's enrollments go on without it, said once).
SOURCE_COLUMN = "ALTER TABLE samples ADD COLUMN IF NOT EXISTS source_sha256 TEXT"
_HAS_SOURCE = ("SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
               "AND table_name = 'samples' AND column_name = 'source_sha256'")
_SCHEMA_LOCK = 7_246_531   # pg_advisory_xact_lock key: two processes never create the tables at once


def is_url(location) -> bool:
    return isinstance(location, str) and location.split("://", 1)[0] in ("postgresql", "postgres") \
        and "://" in location


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise UserError("a postgresql:// gallery needs psycopg: pip install 'psycopg[binary]'") from None
    return psycopg


class PostgresStore(GalleryStore):
    """The gallery in the PostgreSQL database of ``url`` (libpq fills what the URL leaves out
    from the ``PG*`` environment variables and ``~/.pgpass``)."""

    PARAM = "%s"
    UNKNOWN_TABLES_EXIST = "SELECT 1 WHERE to_regclass('unknown_views') IS NOT NULL"

    def __init__(self, url: str, model_id: str | None = None, create: bool = True, dim: int | None = None):
        super().__init__(model_id, dim)
        self.url = url
        self.location = mask_url(url)
        self._passwords = url_passwords(url)
        self._warned_source = False
        self._pg = _psycopg()
        self._deadline = Deadline()
        self._conn = self._connect()
        self._tables = self._call(lambda conn: self._has_tables(), "cannot be opened")
        if not self._tables and not create:
            self._conn.close()
            raise UserError(f"gallery {self.location} does not exist (the database holds no gallery tables): "
                            f"enroll someone first (python -m realtime enroll NAME PHOTO...), or pass the "
                            f"right --gallery")
        if model_id is not None:
            self.check_model()

    # -- connecting and errors -----------------------------------------------------------------
    def _connect(self):
        from psycopg.conninfo import conninfo_to_dict
        try:
            given = conninfo_to_dict(self.url)
            extra = {key: value for key, value in KEEPALIVES.items() if key not in given}
            conn = self._pg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                    application_name="realtime-faces", **extra)
        except self._pg.Error as err:
            raise UserError(self._explain_connect(err)) from None
        except Exception as err:  # a malformed URL (bad port, unknown parameter)
            raise UserError(f"--gallery {self.location} is not a PostgreSQL URL libpq understands "
                            f"({self._clean(err)}): use postgresql://USER@HOST:PORT/DATABASE") from None
        try:   # the server's own bounds for this session (an idle transaction left by a cut-off client ends too)
            with self._deadline.bound(conn.fileno(), ANSWER_TIMEOUT):
                conn.execute("SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false),"
                             " set_config('idle_in_transaction_session_timeout', %s, false)",
                             tuple(str(int(t * 1000)) for t in (STATEMENT_TIMEOUT, LOCK_TIMEOUT, ANSWER_TIMEOUT)))
        except self._pg.Error as err:
            conn.close()
            raise StoreUnavailable(self._no_answer() if self._deadline.expired else
                                   f"cannot reach the PostgreSQL server of gallery {self.location} "
                                   f"({self._clean(err)}): start the server, or check the host and port") from None
        return conn

    def _clean(self, err) -> str:
        """The first line of an error, with the password (if any) masked."""
        text = (str(err).strip().splitlines() or [type(err).__name__])[0]
        text = re.sub(r"^connection to server at .*?failed:\s*", "", text)
        text = re.sub(r"^(connection failed:\s*)", "", text)
        text = text.replace("FATAL:  ", "").strip()
        for password in self._passwords:
            text = text.replace(password, "***")
        return mask_url(text)

    def _explain_connect(self, err) -> str:
        text, state = str(err), getattr(err, "sqlstate", None)
        where = f"gallery {self.location}"
        if state == "28P01" or "password authentication failed" in text or "no password supplied" in text:
            return (f"{where}: the server refused the login ({self._clean(err)}): check the user and its password "
                    f"(in PGPASSWORD or ~/.pgpass rather than the URL) and the server's pg_hba.conf")
        if state == "3D000" or re.search(r'database ".*" does not exist', text):
            return (f"{where}: {self._clean(err)}: create it (createdb, or CREATE DATABASE as an administrator) "
                    f"or pass another --gallery")
        if re.search(r'role ".*" does not exist', text):
            return (f"{where}: {self._clean(err)}: create the role (CREATE ROLE ... LOGIN; README: roles) "
                    f"or pass another user")
        if state and state.startswith("28"):
            return f"{where}: the server refused the connection ({self._clean(err)}): check pg_hba.conf"
        return (f"cannot reach the PostgreSQL server of {where} ({self._clean(err)}): start the server, or check "
                f"the host and port in --gallery")

    def _connection_lost(self, err) -> bool:
        state = getattr(err, "sqlstate", None) or ""
        return self._conn.broken or self._conn.closed or not state or state.startswith(("08", "57P"))

    def _lost(self, err) -> StoreUnavailable:
        return StoreUnavailable(f"gallery {self.location} cannot be reached ({self._clean(err)})")

    def _no_answer(self, seconds: float | None = None) -> str:
        seconds = seconds or ANSWER_TIMEOUT
        return (f"gallery {self.location}: the server did not answer within {seconds:.0f} s (it is stalled, or the "
                f"network to it is down)")

    def _transient(self, err, doing: str, seconds: float | None = None) -> StoreUnavailable | None:
        """A failure that passes (no answer, a lock, a timeout, a lost connection) as one line, else None."""
        state = getattr(err, "sqlstate", None) or ""
        if self._deadline.closing:
            return StoreUnavailable(f"gallery {self.location}: the program ended while the server had not answered: "
                                    f"it {doing}")
        if self._deadline.expired:
            return StoreUnavailable(f"{self._no_answer(seconds)}: it {doing}; check the server and the network")
        if state == "55P03":
            return StoreUnavailable(f"the gallery {self.location} is busy (another session has held a lock on it "
                                    f"for over {LOCK_TIMEOUT:.0f} s): it {doing} now; try again when the other "
                                    f"program has finished")
        if state == "57014":
            return StoreUnavailable(f"gallery {self.location}: the server gave up after {STATEMENT_TIMEOUT:.0f} s "
                                    f"({self._clean(err)}): it {doing}; try again")
        if isinstance(err, self._pg.OperationalError):
            return self._lost(err)
        return None

    def _call(self, work, doing: str, seconds: float | None = None):
        """``work(connection)`` on the live connection, cut off if the server does not answer within
        ``seconds``; a failure that passes is StoreUnavailable, a refused one a UserError."""
        try:
            conn = self._live()
            with self._deadline.bound(conn.fileno(), seconds or ANSWER_TIMEOUT):
                return work(conn)
        except StoreUnavailable:
            raise
        except UserError as err:
            raise StoreUnavailable(str(err)) from None
        except self._pg.Error as err:
            transient = self._transient(err, doing, seconds)
            if transient is not None:
                raise transient from None
            raise UserError(f"gallery {self.location} {doing} ({self._clean(err)}): check the role's "
                            f"grants (README: roles)") from None

    def _live(self):
        """The connection, reconnected if the server dropped it."""
        if self._conn.closed or self._conn.broken:
            try:
                self._conn.close()
            except Exception:   # already dead
                pass
            self._conn = self._connect()
        return self._conn

    def _read(self, sql: str, params=(), binary: bool = False, bulk: bool = False) -> list:
        seconds = BULK_TIMEOUT if bulk else ANSWER_TIMEOUT

        def work(conn):
            if not self._tables:
                self._tables = self._has_tables()
                if not self._tables:
                    return []
            if not bulk:
                with conn.cursor(binary=binary) as cur:
                    return cur.execute(sql, params).fetchall()
            with conn.transaction(), conn.cursor(binary=binary) as cur:   # a whole gallery: the server's bound
                cur.execute(f"SET LOCAL statement_timeout = {int((seconds - 2) * 1000)}")   # grows with ours
                return cur.execute(sql, params).fetchall()
        return self._call(work, "cannot be read", seconds)

    def _has_tables(self) -> bool:
        found = self._conn.execute(
            "SELECT table_name, array_agg(column_name::text) FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ANY(%s) GROUP BY table_name",
            (list(_TABLES),)).fetchall()
        if not found:
            return False
        have = {table: set(columns) for table, columns in found}
        wanted = {"people": {"id", "name", "created"}, "samples": {"id", "person_id", "embedding", "model_id",
                                                                   "created"}, "gallery_state": {"id", "version"}}
        if any(not cols <= have.get(table, set()) for table, cols in wanted.items()):
            raise UserError(f"gallery {self.location}: the database holds tables named "
                            f"{', '.join(sorted(have))} that are not a gallery's: use another database")
        return True

    def _reopen(self) -> "PostgresStore":
        other = PostgresStore(self.url, self.model_id, create=True, dim=self.dim)
        try:
            other._call(lambda conn: conn.execute(f"LISTEN {CHANNEL}"), "cannot be followed")
        except BaseException:
            other._close()
            raise
        return other

    def _wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        try:
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                break
        except self._pg.OperationalError as err:
            raise self._lost(err) from None

    def _interrupt(self) -> None:
        self._deadline.cut(closing=True)

    def _close(self) -> None:
        """Close, first cutting off a call another thread is waiting in (a live run that ends while
        its enrollment waits on a stalled server), so closing never waits on the server."""
        if not self._deadline.running.acquire(blocking=False):
            self._deadline.cut(closing=True)
            if not self._deadline.running.acquire(timeout=ANSWER_TIMEOUT):
                return      # the call never returned: leave the connection to the process's exit
        try:
            self._conn.close()
        finally:
            self._deadline.running.release()

    # -- reading -------------------------------------------------------------------------------
    def _version(self):
        rows = self._read("SELECT version FROM gallery_state WHERE id = 1")
        return rows[0][0] if rows else None

    def _rows(self) -> list:
        where, params = ("WHERE s.model_id = %s ", (self.model_id,)) if self.model_id is not None else ("", ())
        return self._read("SELECT s.id, p.name, s.embedding FROM samples s JOIN people p ON p.id = s.person_id "
                          f'{where}ORDER BY p.name COLLATE "C", s.id', params, binary=True, bulk=True)

    def _foreign_model(self) -> str | None:
        rows = self._read("SELECT model_id FROM samples WHERE model_id <> %s LIMIT 1", (self.model_id,))
        return rows[0][0] if rows else None

    def _stored_dim(self) -> int | None:
        rows = self._read("SELECT octet_length(embedding) / 4, COUNT(*) FROM samples GROUP BY 1 "
                          "ORDER BY 2 DESC LIMIT 1")
        return int(rows[0][0]) if rows else None

    def people(self) -> list[tuple[str, int]]:
        return [(n, int(c)) for n, c in self._read(
            "SELECT p.name, COUNT(s.id) FROM people p LEFT JOIN samples s ON s.person_id = p.id "
            'GROUP BY p.id, p.name ORDER BY p.name COLLATE "C"')]

    def _has_source_column(self) -> bool:
        rows = self._read(_HAS_SOURCE)
        return bool(rows and rows[0][0])

    def dump(self) -> Iterator[tuple[str, bytes, str, float, str | None]]:
        source = "s.source_sha256" if self._has_source_column() else "NULL::text"
        yield from self._read(f"SELECT p.name, s.embedding, s.model_id, s.created, {source} FROM samples s "
                              'JOIN people p ON p.id = s.person_id ORDER BY p.name COLLATE "C", s.id', binary=True,
                              bulk=True)

    def _add_source_column(self, cur) -> bool:
        """Whether samples has ``source_sha256``, adding it (a savepoint of the caller's write transaction)
        when missing and this role owns the table; another role goes on without it, said once."""
        if cur.execute(_HAS_SOURCE).fetchone()[0]:
            return True
        try:
            with cur.connection.transaction():
                cur.execute(SOURCE_COLUMN)
            return True
        except self._pg.errors.InsufficientPrivilege:
            if not self._warned_source:
                self._warned_source = True
                log.warning("gallery %s was made before samples recorded their photo, and this role may not add "
                            "the column: enrolling without it (the same photo is not recognised as enrolled) "
                            "until the tables' owner runs: %s", self.location, SOURCE_COLUMN)
            return False

    # -- writing -------------------------------------------------------------------------------
    def _write(self, work, failed: str, unsure: str, bulk: bool = False, people: bool = True):
        """``work(cursor)`` in one transaction that first takes the gallery's write lock (writers
        queue, nothing is lost) and ends by notifying the live processes. All or nothing, within
        bounded waits: ``failed`` says what a failure left undone, ``unsure`` what to check when the
        server went silent during the commit itself (it may or may not have committed).
        ``people`` False: the write leaves people and samples as they are (unknown faces): the
        lock is taken without raising the counter or notifying, so no live process rebuilds its index."""
        pg = self._pg
        seconds = BULK_TIMEOUT if bulk else ANSWER_TIMEOUT
        committing = False

        def transaction(conn):
            nonlocal committing
            with conn.transaction(), conn.cursor() as cur:
                if bulk:
                    cur.execute(f"SET LOCAL statement_timeout = {int((seconds - 2) * 1000)}")
                if not self._tables:   # the first enrollment makes the tables in its own transaction: all or nothing
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    if not self._has_tables():  # another process may have made them meanwhile: DDL on
                        cur.execute(SCHEMA)     # tables in use would lock them and could deadlock its writes
                if people:
                    cur.execute("UPDATE gallery_state SET version = version + 1 WHERE id = 1")
                else:
                    cur.execute("SELECT version FROM gallery_state WHERE id = 1 FOR UPDATE")
                result = work(cur)
                if people:
                    cur.execute(f"NOTIFY {CHANNEL}")
                committing = True
            self._tables = True
            return result

        where = f"gallery {self.location}"
        try:
            conn = self._live()
            with self._deadline.bound(conn.fileno(), seconds):
                return transaction(conn)
        except UserError as err:      # reconnecting failed: nothing was sent
            raise UserError(f"{str(err).rstrip('.')}: {failed}") from None
        except pg.errors.InsufficientPrivilege as err:
            raise UserError(f"{where}: this role may not change the gallery ({self._clean(err)}): "
                            f"{failed}; enroll and remove from a station whose role may write (README: roles)"
                            ) from None
        except pg.Error as err:
            state = getattr(err, "sqlstate", None) or ""
            lost = self._deadline.expired or (isinstance(err, pg.OperationalError) and self._connection_lost(err))
            why = ("the program ended first" if self._deadline.closing else
                   f"no answer within {seconds:.0f} s" if self._deadline.expired else self._clean(err))
            if committing and lost:
                message = f"{where}: the server stopped answering while saving ({why}): {unsure}"
            elif self._deadline.closing:
                message = f"{where}: the program ended while the server had not answered: {failed}"
            elif self._deadline.expired:
                message = f"{self._no_answer(seconds)}: {failed}; check the server and the network, then try again"
            elif state == "55P03":
                message = (f"the gallery {self.location} is busy (another session has held a lock on it for over "
                           f"{LOCK_TIMEOUT:.0f} s): {failed}; try again when the other program has finished")
            elif state == "57014":
                message = f"{where}: the server gave up ({why}): {failed}; try again"
            elif lost:
                message = f"{where} cannot be reached ({why}): {failed}; check that the server is running and try again"
            elif isinstance(err, pg.OperationalError):   # a deadlock: the server is there
                message = f"{where} cannot be written ({why}): {failed}; try again"
            else:
                message = f"{where} cannot be written ({why}): {failed}"
            raise UserError(message) from None

    def _insert(self, name: str, emb: np.ndarray, model_id: str, created: float,
                sources: list[str | None] | None = None, replace: bool = False) -> int:
        sources = sources or [None] * len(emb)

        def work(cur):
            tagged = self._add_source_column(cur)
            cur.execute("INSERT INTO people(name, created) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                        (name, created))
            (person_id,) = cur.execute("SELECT id FROM people WHERE name = %s", (name,)).fetchone()
            if replace:   # the person afresh: the old samples go in the same transaction as the new come
                cur.execute("DELETE FROM samples WHERE person_id = %s", (person_id,))
            if tagged:
                cur.executemany("INSERT INTO samples(person_id, embedding, model_id, created, source_sha256) "
                                "VALUES (%s, %s, %s, %s, %s)",
                                [(person_id, row.tobytes(), model_id, created, src) for row, src in zip(emb, sources)])
            else:
                cur.executemany("INSERT INTO samples(person_id, embedding, model_id, created) VALUES (%s, %s, %s, %s)",
                                [(person_id, row.tobytes(), model_id, created) for row in emb])
            (count,) = cur.execute("SELECT COUNT(*) FROM samples WHERE person_id = %s", (person_id,)).fetchone()
            return int(count)
        return self._write(work, f"nothing of {name!r} was saved, the gallery is as before",
                           f"check with `python -m realtime list` whether {name!r} was saved")

    def _delete(self, name: str) -> int | None:
        def work(cur):
            row = cur.execute("SELECT id FROM people WHERE name = %s", (name,)).fetchone()
            if row is None:
                return None
            (count,) = cur.execute("SELECT COUNT(*) FROM samples WHERE person_id = %s", row).fetchone()
            cur.execute("DELETE FROM people WHERE id = %s", row)      # its samples go with it (cascade)
            return int(count)
        return self._write(work, f"{name!r} was not removed",
                           f"check with `python -m realtime list` whether {name!r} was removed")

    def _write_unknowns(self, work, failed: str):
        return self._write(work, failed, "check with `python -m realtime unknowns` whether it was saved", people=False)

    def _make_unknown_tables(self, tx) -> None:
        if tx.execute(self.UNKNOWN_TABLES_EXIST).fetchone() is None:
            tx.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))   # as the first enrollment does
            if tx.execute(self.UNKNOWN_TABLES_EXIST).fetchone() is None:
                tx.execute(UNKNOWN_SCHEMA)

    def load(self, rows: list[tuple[str, bytes, str, float, str | None]]) -> None:
        def work(cur):
            tagged = self._add_source_column(cur)
            first: dict[str, float] = {}
            for name, _, _, created, _ in rows:
                first.setdefault(name, created)
            cur.executemany("INSERT INTO people(name, created) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                            list(first.items()))
            ids = dict(cur.execute("SELECT name, id FROM people").fetchall())
            columns = "person_id, embedding, model_id, created" + (", source_sha256" if tagged else "")
            with cur.copy(f"COPY samples ({columns}) FROM STDIN") as copy:
                for name, blob, model_id, created, src in rows:
                    copy.write_row((ids[name], bytes(blob), model_id, created) + ((src,) if tagged else ()))
        self._write(work, "nothing was copied", "check with `python -m realtime list` whether the copy was saved",
                    bulk=True)
        self._changed()
