"""What every gallery store shares: checks on what goes in and comes out, the cached index, and a
watcher thread that keeps a live process's index current while the loop never waits on the store.

A store (SQLite file, PostgreSQL database) only moves rows; turning rows into a matching index is
:meth:`realtime.matching.Index.from_rows`. Embeddings of different encoders are not comparable,
so samples of another encoder are refused. A sample that is not ``dim`` finite numbers (a damaged
or hand-edited row) is named in a warning and left out of the index, so one bad row never turns
everyone unknown.
"""
from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections import Counter
from typing import Iterable, Iterator, Sequence

import numpy as np

from realtime.errors import UserError, shorten
from realtime.matching import Index
from realtime.names import check_name, printable

log = logging.getLogger("realtime.gallery")

# How often the watcher asks the store whether it changed (seconds), and its longest wait between
# reconnection attempts while the store is unreachable.
WATCH_INTERVAL = 0.25
RETRY_MAX = 2.0
# Closing a store gives a background write this long to finish before cutting it off (it then saves nothing).
CLOSE_GRACE = 1.0


class StoreUnavailable(UserError):
    """The store cannot be reached just now (locked, server down): a live loop waits it out."""


def check_embeddings(embeddings, dim: int | None) -> np.ndarray:
    """``(n, d)`` float32 samples to store, or ValueError: never store what cannot be matched."""
    emb = np.asarray(embeddings, np.float32)
    if emb.ndim != 2 or len(emb) == 0 or emb.shape[1] == 0:
        raise ValueError("embeddings must be a non-empty (n, d) array")
    if dim is not None and emb.shape[1] != dim:
        raise ValueError(f"embeddings have {emb.shape[1]} numbers each, the gallery's samples {dim}")
    if not np.isfinite(emb).all():
        raise ValueError("embeddings hold NaN or infinite values")
    return emb


def decode_embedding(blob, dim: int | None) -> np.ndarray | None:
    """A stored sample as float32, or None when it is not ``dim`` finite numbers."""
    if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) == 0 or len(blob) % 4:
        return None
    vector = np.frombuffer(bytes(blob), np.float32)
    if (dim is not None and len(vector) != dim) or not np.isfinite(vector).all():
        return None
    return vector


def common_dim(blobs: Iterable) -> int | None:
    """The length most stored samples have (the gallery's embedding size)."""
    sizes = Counter(len(b) // 4 for b in blobs if isinstance(b, (bytes, bytearray, memoryview)) and len(b) % 4 == 0
                    and len(b))
    return sizes.most_common(1)[0][0] if sizes else None


def _same_samples(a: Index, b: Index) -> bool:
    return a.names == b.names and np.array_equal(a.labels, b.labels) and np.array_equal(a.embeddings, b.embeddings)


class GalleryStore:
    """People, their samples (with the encoder identity) and a cached matching :class:`Index`.

    ``model_id`` set: samples of any other encoder make opening fail (enroll, match).
    ``model_id`` None: no check (``list``, ``remove`` and ``gallery copy`` work on any gallery).
    Subclasses move rows; this class validates them and keeps the index.
    """

    location: str      # where the gallery is, safe to print (no password)
    PARAM = "?"        # the store's SQL placeholder
    UNKNOWN_TABLES_EXIST = ""   # a query giving a row when the unknown faces' tables are there

    def __init__(self, model_id: str | None, dim: int | None):
        self.model_id = model_id
        self.dim = dim
        self._index: Index | None = None
        self._token = None            # the store's change token the index was built at
        self._fresh = False           # False after our own write: rebuild before the next match
        self._writes = 0              # our own writes (the watcher drops an index older than one)
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._warned_bad: frozenset = frozenset()
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._follower: GalleryStore | None = None     # the watcher thread's own connection
        self._pending: set[concurrent.futures.Future] = set()   # background writes not yet reported
        self._settled = threading.Condition(self._lock)

    # -- what a store implements ---------------------------------------------------------------
    def _version(self):
        """A cheap token that changes whenever any process changes the gallery (raises StoreUnavailable)."""
        raise NotImplementedError

    def _rows(self) -> list[tuple[int, str, object]]:
        """``(sample id, name, blob)`` of this encoder's samples (all samples without a model id)."""
        raise NotImplementedError

    def _foreign_model(self) -> str | None:
        """The id of a model other than ``model_id`` that made samples here, if any."""
        raise NotImplementedError

    def _insert(self, name: str, emb: np.ndarray, model_id: str, created: float,
                sources: list[str | None] | None = None, replace: bool = False) -> int:
        """Add ``emb`` to ``name`` (each row with its photo's SHA-256 or None) in one transaction, first
        deleting the person's samples when ``replace``; returns their sample count."""
        raise NotImplementedError

    def _delete(self, name: str) -> int | None:
        raise NotImplementedError

    def people(self) -> list[tuple[str, int]]:
        """``(name, sample count)`` for everyone, by name."""
        raise NotImplementedError

    def _read(self, sql: str, params=()) -> list:
        """The rows of one query (placeholders are :attr:`PARAM`)."""
        raise NotImplementedError

    def _has_source_column(self) -> bool:
        """Whether the samples table records each sample's photo (galleries made before it do not)."""
        raise NotImplementedError

    def sources(self, name: str) -> set[str]:
        """The photos already enrolled for ``name``, as the SHA-256 of each file (samples enrolled
        without one, from the window or a gallery made before they were recorded, give none)."""
        if not self._has_source_column():   # a gallery from before the column: no photo is known
            return set()
        return {src for (src,) in self._read(
            "SELECT s.source_sha256 FROM samples s JOIN people p ON p.id = s.person_id "
            f"WHERE p.name = {self.PARAM} AND s.source_sha256 IS NOT NULL", (name,))}

    def dump(self) -> Iterator[tuple[str, bytes, str, float, str | None]]:
        """Every sample as ``(name, embedding bytes, model id, created, source SHA-256 or None)`` (for
        ``gallery copy``)."""
        raise NotImplementedError

    def load(self, rows: list[tuple[str, bytes, str, float, str | None]]) -> None:
        """Add rows from :meth:`dump` in one transaction."""
        raise NotImplementedError

    def _stored_dim(self) -> int | None:
        raise NotImplementedError

    def _reopen(self) -> "GalleryStore":
        """Another connection to the same gallery, for the watcher thread."""
        raise NotImplementedError

    def _wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        """Return after ``timeout`` s, or earlier when the store says it changed or ``stop`` is set."""
        stop.wait(timeout)

    def _close(self) -> None:
        raise NotImplementedError

    def _interrupt(self) -> None:
        """End a call another thread is waiting in now (it fails, saving nothing)."""

    def _make_unknown_tables(self, tx) -> None:
        """Inside a write transaction: the unknown faces' tables, if they are not there yet."""
        raise NotImplementedError

    def _write_unknowns(self, work, failed: str):
        """``work`` in one write transaction (with the gallery's write lock) that changes no person or sample."""
        raise NotImplementedError

    @property
    def unknowns(self):
        """The unknown faces kept in this gallery (:class:`realtime.gallery.unknowns.UnknownTables`)."""
        from realtime.gallery.unknowns import UnknownTables
        return UnknownTables(self)

    # -- shared --------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the watcher and the writer; a background write still waiting on the store after
        ``CLOSE_GRACE`` s is cut off (nothing of it is saved, and the log says so)."""
        self._stop.set()
        if self._writer is not None:
            self._writer.shutdown(wait=False)
            if not self._settle(CLOSE_GRACE):
                for future in list(self._pending):
                    future.cancel()                     # not started yet: never will
                self._interrupt()
                self._settle(CLOSE_GRACE)
            self._writer = None
        if self._watcher is not None:
            follower = self._follower
            if follower is not None:
                follower._interrupt()                  # a poll waiting on a stalled store ends now
            self._watcher.join(timeout=CLOSE_GRACE)   # still connecting: it ends by itself (a daemon thread)
            self._watcher = None
        self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    def check_model(self) -> None:
        """Refuse a gallery enrolled with another encoder (an older shipped one, say): its samples
        cannot be compared with this encoder's, and matching them would name the wrong people."""
        other = self._foreign_model()
        if other:
            people = [name for name, _ in self.people()]
            shown = ", ".join(shorten(name, 40) for name in people[:5]) + (f" and {len(people) - 5} more" if len(people) > 5 else "")
            raise UserError(
                f"gallery {self.location} holds people enrolled with another encoder ({other[:12]}...; this one is "
                f"{self.model_id[:12]}...): {shown or 'nobody'}. Embeddings of different encoders cannot be compared: "
                f"re-enroll them into a new gallery (--gallery NEW.db, or move this file away), or remove them "
                f"with `python -m realtime remove NAME`")

    def add_samples(self, name: str, embeddings: np.ndarray, sources: Sequence[str | None] | None = None,
                    replace: bool = False) -> int:
        """Add samples to ``name`` (created if new) in one transaction; returns the person's sample count.

        ``sources``: each sample's photo (the SHA-256 of its file, or None), so the same photo is not
        enrolled twice (:meth:`sources`). ``replace``: the person starts afresh, their earlier samples
        deleted in the same transaction (a failed write keeps them)."""
        if self.model_id is None:
            raise ValueError("a gallery opened without a model id cannot take samples")
        name = check_name(name)
        try:
            dim = self.dim if self.dim is not None else self._stored_dim()
        except StoreUnavailable as err:
            raise UserError(f"{err} (nothing of {name!r} was saved, the gallery is as before)") from None
        emb = check_embeddings(embeddings, dim)
        if sources is not None and len(sources) != len(emb):
            raise ValueError(f"{len(sources)} sources for {len(emb)} samples")
        count = self._insert(name, emb, self.model_id, time.time(), None if sources is None else list(sources),
                             replace)
        self._changed()
        return count

    def add_samples_in_background(self, name: str, embeddings: np.ndarray) -> concurrent.futures.Future:
        """:meth:`add_samples` on the store's writer thread, for a live loop: frames go on being
        matched while the store answers (every wait is bounded), and the loop reads the outcome
        from the future: the person's sample count, or the UserError saying nothing was saved
        (also logged here, so a failure the loop no longer looks at is still said)."""
        return self.in_background(f"enrollment of {name}", self.add_samples, name, embeddings)

    def in_background(self, what: str, work, *args) -> concurrent.futures.Future:
        """``work(*args)`` on the store's writer thread (one write at a time, in order), its
        failure logged as ``what`` not saved; closing the store waits for it as for an enrollment."""
        with self._lock:
            if self._writer is None:
                self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gallery-write")
            future = self._writer.submit(work, *args)
            self._pending.add(future)
        future.add_done_callback(lambda done: self._written(what, done))
        return future

    def _settle(self, timeout: float) -> bool:
        """Wait until every background write has finished and been reported."""
        with self._settled:
            return self._settled.wait_for(lambda: not self._pending, timeout)

    def _written(self, what: str, future: concurrent.futures.Future) -> None:
        error = None if future.cancelled() else future.exception()
        if future.cancelled():
            log.error("%s not saved: the program ended before it was written", what)
        elif isinstance(error, (UserError, ValueError)):
            log.error("%s not saved: %s", what, error)
        elif error is not None:
            log.error("%s not saved: unexpected error", what, exc_info=error)
        with self._settled:
            self._pending.discard(future)
            self._settled.notify_all()

    def remove(self, name: str) -> int:
        """Remove a person and their samples; returns how many samples went, raises if unknown.

        ``name`` as ``enroll`` takes it (NFC, stripped), or exactly as stored or as ``list`` prints
        it: a name another program stored with characters ``enroll`` refuses can still be removed."""
        try:
            checked = check_name(name)
        except UserError:
            checked = None
        count = None if checked is None else self._delete(checked)
        if count is None:
            names = [n for n, _ in self.people()]
            stored = next((n for n in names if n == name), None) or \
                next((n for n in names if printable(n) == name), None)
            count = None if stored is None else self._delete(stored)
        if count is None:
            raise UserError(f"no person named {printable(shorten(name, 60))} in gallery {self.location}: "
                            f"give the name as `list` prints it")
        self._changed()
        return count

    def _changed(self) -> None:
        with self._lock:
            self._writes += 1
            self._fresh = False
        if self._watcher is not None:
            self._refresh_now()     # on the writing thread: the loop's next frame matches with it, doing no I/O

    def index(self) -> Index:
        """The matching index, rebuilt only when the gallery changed (here or in another process).

        While :meth:`watch` runs this does no I/O: a change elsewhere is picked up by the watcher
        thread, and our own writes are rebuilt by the thread that wrote them, before it returns."""
        if self._watcher is not None:
            return self._index if self._index is not None else Index.empty(self.dim or 0)
        try:
            token = self._version()
            if self._index is None or not self._fresh or token != self._token:
                self._rebuild(self, token, self._writes)
        except StoreUnavailable as err:
            if self._index is None:
                raise
            log.warning("%s: matching on the last index (%d samples) meanwhile", err, len(self._index))
        return self._index

    def _refresh_now(self) -> None:
        try:
            self._rebuild(self, self._version(), self._writes)
        except StoreUnavailable as err:
            log.warning("%s: matching on the last index meanwhile", err)
            with self._lock:
                self._fresh = True     # the watcher catches up once the store answers again
        except UserError as err:
            log.error("%s", err)
            with self._lock:
                self._fresh = True

    def _rebuild(self, source: "GalleryStore", token, writes: int) -> bool:
        """Build the index from ``source``'s rows; keep it unless we wrote meanwhile."""
        if self.model_id is not None:
            source.check_model()
        index = self._build(source._rows())
        with self._lock:
            if writes != self._writes:
                return False
            if self._index is not None and _same_samples(index, self._index):
                index = self._index   # another table changed (unknown faces): the loop's names stay as they are
            self._index, self._token, self._fresh = index, token, True
        return True

    def _build(self, rows: list[tuple[int, str, object]]) -> Index:
        dim = self.dim if self.dim is not None else common_dim(blob for _, _, blob in rows)
        good, bad = [], []
        for sample_id, name, blob in rows:
            vector = decode_embedding(blob, dim)
            if vector is None:
                bad.append((sample_id, name))
            else:
                good.append((name, vector))
        self._report_bad(bad, dim)
        index = Index.from_rows(good, dim or 0)
        log.debug("gallery index rebuilt: %d samples of %d people", len(index), len(index.names))
        return index

    def _report_bad(self, bad: list[tuple[int, str]], dim: int | None) -> None:
        key = frozenset(bad)
        if not bad or key == self._warned_bad:
            return
        self._warned_bad = key
        shown = ", ".join(f"{name!r} (sample {sid})" for sid, name in bad[:5]) + (" ..." if len(bad) > 5 else "")
        log.warning("gallery %s: %d damaged samples (not %s finite numbers) are left out of matching: %s; "
                    "remove those people and enroll them again", self.location, len(bad), dim or "a row of",
                    shown)

    # -- live processes ------------------------------------------------------------------------
    def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Keep the index current from a background thread (changes made by other processes are
        seen within ``interval`` s or at once with notifications); the loop never waits on the
        store, and an unreachable or locked store leaves it matching on the index it has."""
        if self._watcher is not None:
            return
        other: GalleryStore | None = None
        try:   # the index is built once, from the watcher's connection: its change tokens are the ones it compares
            other = self._reopen()
            self._rebuild(other, other._version(), self._writes)
        except StoreUnavailable:
            if other is not None:
                other._close_quietly()
                other = None
            if self._index is None or not self._fresh:
                self.index()
        except BaseException:
            if other is not None:
                other._close_quietly()
            raise
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch_loop, args=(interval, other), name="gallery-watch",
                                         daemon=True)
        self._watcher.start()

    def _watch_loop(self, interval: float, other: "GalleryStore | None") -> None:
        token, down_since, delay = self._token, None, interval
        while not self._stop.is_set():
            try:
                if other is None:
                    other = self._reopen()
                self._follower = other
                writes = self._writes
                now = other._version()
                if now != token:
                    before = self._index
                    if self._rebuild(other, now, writes) and self._index is not before:
                        log.info("gallery %s changed: %d samples of %d people", self.location,
                                 len(self._index), len(self._index.names))
                    token = now
                if down_since is not None:
                    log.info("gallery %s answers again (after %.1f s)", self.location, time.monotonic() - down_since)
                    down_since, delay = None, interval
                other._wait_for_change(interval, self._stop)
            except (StoreUnavailable, UserError) as err:
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("%s: matching on the last index (%d samples) and retrying", err,
                                len(self._index) if self._index is not None else 0)
                if other is not None:
                    self._follower = None
                    other._close_quietly()
                    other = None
                self._stop.wait(delay)
                delay = min(RETRY_MAX, delay * 2)
            except Exception:  # never let the watcher die silently: the loop would match on a stale index
                log.exception("gallery watcher: unexpected error; retrying")
                self._stop.wait(RETRY_MAX)
        self._follower = None
        if other is not None:
            other._close_quietly()

    def _close_quietly(self) -> None:
        try:
            self._close()
        except Exception:   # a dead connection may fail to close; it is being dropped anyway
            pass
