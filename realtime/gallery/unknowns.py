"""Unknown faces in the gallery's own store: groups of unknown tracks, each track's best views.

Three tables beside ``people`` and ``samples``, in the same SQLite file or PostgreSQL database and
under the same rules: every change is one transaction (taken with the gallery's write lock, so
other processes' writes queue), embeddings are float32 bytes, crops and thumbnails PNG and JPEG
bytes (nothing is pickled), and a damaged row is named in a warning and left out.

- ``unknown_groups``: one person, as far as the grouping can tell (first and last seen, how many
  tracks it gathered, from which sources);
- ``unknown_tracks``: a face followed by a live process (``key``: that run and its track number),
  with its views' mean direction (what grouping compares: :mod:`realtime.unknowns.grouping`), the
  encoder that made it and its source;
- ``unknown_views``: a track's best views (:mod:`realtime.unknowns.quality`): embedding, aligned
  crop (PNG), thumbnail (JPEG), when seen, quality.

Grouping happens inside the transaction that stores a track, on the groups as they are in the store
at that moment, so two cameras recording the same stranger at once still end in one group (the
second writer waits for the first and then joins its group). The tables are made by the first
change that needs them, in that change's transaction.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from realtime.errors import UserError
from realtime.gallery.store import check_embeddings, decode_embedding
from realtime.names import check_name
from realtime.unknowns.grouping import join, track_embedding
from realtime.unknowns.quality import Caps, Stored, View, over_caps

log = logging.getLogger("realtime.gallery")

# The most recent sources a group remembers (cameras, files, streams).
MAX_SOURCES = 16
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Group:
    """One unknown group as ``unknowns`` lists it."""

    id: int
    views: int
    tracks: int          # tracks it gathered (also those whose views the caps have dropped since)
    first_seen: float    # seconds since the epoch
    last_seen: float
    sources: tuple[str, ...]


@dataclass(frozen=True)
class GroupView:
    """A stored view of a group, decoded (``embedding`` None: damaged, or another encoder's)."""

    id: int
    seen: float
    quality: float
    embedding: np.ndarray | None
    crop: bytes
    thumbnail: bytes


def encode_png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("a crop could not be encoded as PNG")
    return data.tobytes()


def encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("a thumbnail could not be encoded as JPEG")
    return data.tobytes()


def decode_image(blob) -> np.ndarray | None:
    """A stored PNG or JPEG as RGB uint8, or None when it does not decode (a damaged row)."""
    if not isinstance(blob, (bytes, bytearray, memoryview)) or not len(blob):
        return None
    image = cv2.imdecode(np.frombuffer(bytes(blob), np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _sources(text, group_id) -> tuple[str, ...]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        log.warning("unknown group %s: its sources are damaged and left out", group_id)
        return ()
    return tuple(value)


def _with_param(sql: str, param: str) -> str:
    """``sql`` written with ``?`` placeholders, in a store's own (``%s`` for PostgreSQL)."""
    return sql if param == "?" else sql.replace("?", param)


class _Tx:
    """A store's transaction (an SQLite connection, a psycopg cursor) taking ``?`` placeholders."""

    def __init__(self, raw, param: str):
        self.raw, self.param = raw, param

    def _sql(self, sql: str) -> str:
        return _with_param(sql, self.param)

    def execute(self, sql: str, params=()):
        return self.raw.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows) -> None:
        rows = list(rows)
        if rows:
            self.raw.executemany(self._sql(sql), rows)


class UnknownTables:
    """The unknown groups of one open gallery store (``store.unknowns``)."""

    def __init__(self, store):
        self.store = store

    # -- plumbing ------------------------------------------------------------------------------
    def _write(self, work: Callable[[_Tx], object], failed: str, people: bool = False):
        """``work`` in one transaction with the gallery's write lock; ``people``: it also changes
        people or samples (naming), so live processes are told to rebuild their index."""
        store = self.store

        def transaction(raw):
            tx = _Tx(raw, store.PARAM)
            store._make_unknown_tables(tx)
            return work(tx)
        if people:
            return store._write(transaction, failed, "check with `python -m realtime list` whether it was saved")
        return store._write_unknowns(transaction, failed)

    def _read(self, sql: str, params=()) -> list:
        store = self.store
        if not store._read(store.UNKNOWN_TABLES_EXIST):
            return []
        return store._read(_with_param(sql, store.PARAM), params)

    def _model(self) -> str:
        if self.store.model_id is None:
            raise ValueError("a gallery opened without a model id cannot keep unknown faces")
        return self.store.model_id

    # -- the live loop -------------------------------------------------------------------------
    def record(self, key: str, views: Sequence[View], source: str, caps: Caps,
               threshold_for: Callable[[int], float], seen: tuple[float, float] | None = None) -> int | None:
        """Store (or replace) a track's views, grouping a new track with the groups stored now;
        the caps then drop the oldest views. ``seen``: when the face was first and last seen (None:
        its views' times). Returns the track's group (None: the caps left it nothing)."""
        model = self._model()
        views = list(views)
        emb = check_embeddings(np.stack([v.embedding for v in views]), self.store.dim)
        mean = track_embedding(emb).astype(np.float32)
        blobs = [(encode_png(v.crop), encode_jpeg(v.thumbnail)) for v in views]
        first, last = seen if seen is not None else (min(v.time for v in views), max(v.time for v in views))

        def work(tx: _Tx):
            row = tx.execute("SELECT id, group_id FROM unknown_tracks WHERE key = ?", (key,)).fetchone()
            if row is not None:
                track_id, group_id = int(row[0]), int(row[1])
                tx.execute("UPDATE unknown_tracks SET embedding = ?, last_seen = ? WHERE id = ?",
                           (mean.tobytes(), last, track_id))
                tx.execute("DELETE FROM unknown_views WHERE track_id = ?", (track_id,))
            else:
                group_id = self._place(tx, mean, model, threshold_for, first, last, source)
                track_id = int(tx.execute(
                    "INSERT INTO unknown_tracks(group_id, key, embedding, model_id, source, first_seen, last_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (group_id, key, mean.tobytes(), model, source, first, last)).fetchone()[0])
            tx.executemany("INSERT INTO unknown_views(track_id, seen, quality, embedding, crop, thumbnail) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [(track_id, v.time, float(v.quality), e.tobytes(), crop, thumb)
                            for v, e, (crop, thumb) in zip(views, emb, blobs)])
            self._seen(tx, group_id, first, last, [source])
            self._apply_caps(tx, caps)
            alive = tx.execute("SELECT 1 FROM unknown_tracks WHERE id = ?", (track_id,)).fetchone()
            return group_id if alive else None
        return self._write(work, "the unknown face's views were not saved")

    def _place(self, tx: _Tx, mean: np.ndarray, model: str, threshold_for, first: float, last: float,
               source: str) -> int:
        """The group a new track joins (stored groups it brings within reach merge into the oldest)."""
        members: dict[int, list[np.ndarray]] = {}
        for track_id, group_id, blob in tx.execute(
                "SELECT id, group_id, embedding FROM unknown_tracks WHERE model_id = ?", (model,)).fetchall():
            vector = decode_embedding(blob, len(mean))
            if vector is None:
                log.warning("unknown track %s (group %s) is damaged: left out of grouping", track_id, group_id)
                continue
            members.setdefault(int(group_id), []).append(vector)
        groups = {g: np.stack(v) for g, v in members.items()}
        merged = join(mean[None, :], groups, threshold_for(len(groups)))
        if not merged:
            return int(tx.execute("INSERT INTO unknown_groups(first_seen, last_seen, tracks, sources) "
                                  "VALUES (?, ?, 1, ?) RETURNING id", (first, last, json.dumps([source]))).fetchone()[0])
        target, others = min(merged), sorted(set(merged) - {min(merged)})
        for other in others:
            g = tx.execute("SELECT first_seen, last_seen, tracks, sources FROM unknown_groups WHERE id = ?",
                           (other,)).fetchone()
            tx.execute("UPDATE unknown_tracks SET group_id = ? WHERE group_id = ?", (target, other))
            tx.execute("UPDATE unknown_groups SET tracks = tracks + ? WHERE id = ?", (int(g[2]), target))
            self._seen(tx, target, float(g[0]), float(g[1]), list(_sources(g[3], other)))
            tx.execute("DELETE FROM unknown_groups WHERE id = ?", (other,))
            log.info("unknown groups %s and %s are one person: merged into %s", target, other, target)
        tx.execute("UPDATE unknown_groups SET tracks = tracks + 1 WHERE id = ?", (target,))
        return target

    def _seen(self, tx: _Tx, group_id: int, first: float, last: float, sources: list[str]) -> None:
        row = tx.execute("SELECT first_seen, last_seen, sources FROM unknown_groups WHERE id = ?",
                         (group_id,)).fetchone()
        known = [s for s in _sources(row[2], group_id) if s not in sources]
        kept = (known + [s for s in dict.fromkeys(sources)])[-MAX_SOURCES:]
        tx.execute("UPDATE unknown_groups SET first_seen = ?, last_seen = ?, sources = ? WHERE id = ?",
                   (min(float(row[0]), first), max(float(row[1]), last), json.dumps(kept), group_id))

    def _apply_caps(self, tx: _Tx, caps: Caps) -> None:
        rows = tx.execute("SELECT v.id, t.group_id, t.key, v.seen FROM unknown_views v "
                          "JOIN unknown_tracks t ON t.id = v.track_id").fetchall()
        drop = over_caps([Stored(int(i), int(g), str(k), float(s)) for i, g, k, s in rows], caps)
        tx.executemany("DELETE FROM unknown_views WHERE id = ?", [(i,) for i in drop])
        if drop:
            self._drop_empty(tx)

    @staticmethod
    def _drop_empty(tx: _Tx) -> None:
        """Tracks left without views, and groups left without tracks, go too."""
        tx.execute("DELETE FROM unknown_tracks WHERE NOT EXISTS "
                   "(SELECT 1 FROM unknown_views v WHERE v.track_id = unknown_tracks.id)")
        tx.execute("DELETE FROM unknown_groups WHERE NOT EXISTS "
                   "(SELECT 1 FROM unknown_tracks t WHERE t.group_id = unknown_groups.id)")

    def seen(self, key: str, last: float) -> None:
        """A stored track's face is still there at ``last``: its and its group's last time seen."""
        def work(tx: _Tx):
            row = tx.execute("SELECT group_id FROM unknown_tracks WHERE key = ?", (key,)).fetchone()
            if row is not None:
                tx.execute("UPDATE unknown_tracks SET last_seen = ? WHERE key = ? AND last_seen < ?", (last, key, last))
                tx.execute("UPDATE unknown_groups SET last_seen = ? WHERE id = ? AND last_seen < ?", (last, row[0], last))
        self._write(work, "the unknown face's last time seen was not saved")

    def withdraw(self, key: str) -> None:
        """Take back a track stored while it was unknown (it was named after all): its views go,
        and its group if it held nothing else."""
        def work(tx: _Tx):
            row = tx.execute("SELECT group_id FROM unknown_tracks WHERE key = ?", (key,)).fetchone()
            if row is None:
                return
            tx.execute("DELETE FROM unknown_tracks WHERE key = ?", (key,))
            tx.execute("UPDATE unknown_groups SET tracks = tracks - 1 WHERE id = ? AND tracks > 1", (row[0],))
            self._drop_empty(tx)
        self._write(work, "the named face's unknown views were not removed")

    # -- listing, naming, forgetting -----------------------------------------------------------
    def groups(self) -> list[Group]:
        rows = self._read(
            "SELECT g.id, g.first_seen, g.last_seen, g.tracks, g.sources, "
            "(SELECT COUNT(*) FROM unknown_views v JOIN unknown_tracks t ON t.id = v.track_id "
            "WHERE t.group_id = g.id) FROM unknown_groups g ORDER BY g.id")
        out = []
        for gid, first, last, tracks, sources, views in rows:
            try:
                out.append(Group(int(gid), int(views), int(tracks), float(first), float(last), _sources(sources, gid)))
            except (TypeError, ValueError):
                log.warning("unknown group %s is damaged: left out", gid)
        return out

    def group(self, group_id: int) -> Group:
        found = [g for g in self.groups() if g.id == group_id]
        if not found:
            raise UserError(f"no unknown group {group_id} in gallery {self.store.location}: "
                            f"`python -m realtime unknowns` lists them")
        return found[0]

    # A group's views, best first.
    VIEWS = ("SELECT v.id, v.seen, v.quality, v.embedding, v.crop, v.thumbnail, t.model_id FROM unknown_views v "
             "JOIN unknown_tracks t ON t.id = v.track_id WHERE t.group_id = ? ORDER BY v.quality DESC, v.id")

    def views(self, group_id: int) -> list[GroupView]:
        """A group's views, best first; a view whose embedding is damaged or of another encoder has
        ``embedding`` None (a damaged one is named in a warning)."""
        return self._decode(group_id, self._read(self.VIEWS, (int(group_id),)))

    def _decode(self, group_id: int, rows) -> list[GroupView]:
        out = []
        for vid, seen, quality, blob, crop, thumb, model in rows:
            ours = self.store.model_id is None or model == self.store.model_id
            vector = decode_embedding(blob, self.store.dim) if ours else None
            if ours and vector is None:
                log.warning("unknown group %s: view %s is damaged (not finite numbers): left out", group_id, vid)
            out.append(GroupView(int(vid), float(seen), float(quality), vector, bytes(crop or b""),
                                 bytes(thumb or b"")))
        return out

    def name(self, group_id: int, name: str, limit: int) -> tuple[int, int]:
        """Enroll the group's best ``limit`` views as ``name`` (added to an existing person) and
        remove the group, all in one transaction. Returns (views enrolled, the person's sample count)."""
        model = self._model()
        name = check_name(name)
        now = time.time()

        def work(tx: _Tx):
            if tx.execute("SELECT 1 FROM unknown_groups WHERE id = ?", (group_id,)).fetchone() is None:
                raise UserError(f"no unknown group {group_id} in gallery {self.store.location}: "
                                f"`python -m realtime unknowns` lists them")
            views = self._decode(group_id, tx.execute(self.VIEWS, (int(group_id),)).fetchall())
            usable = [v.embedding for v in views if v.embedding is not None][:limit]
            if not usable:
                raise UserError(f"unknown group {group_id} holds no views this encoder made (another encoder's, or "
                                f"damaged): nothing to enroll; `unknowns forget {group_id}` removes it")
            emb = check_embeddings(np.stack(usable), self.store.dim)
            tx.execute("INSERT INTO people(name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, now))
            (person_id,) = tx.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            tx.executemany("INSERT INTO samples(person_id, embedding, model_id, created) VALUES (?, ?, ?, ?)",
                           [(person_id, row.tobytes(), model, now) for row in emb])
            (count,) = tx.execute("SELECT COUNT(*) FROM samples WHERE person_id = ?", (person_id,)).fetchone()
            tx.execute("DELETE FROM unknown_groups WHERE id = ?", (group_id,))
            return len(emb), int(count)
        result = self._write(work, f"unknown group {group_id} was not named, the gallery is as before", people=True)
        self.store._changed()
        return result

    def forget(self, group_ids: Sequence[int] = (), everything: bool = False,
               older_than: float | None = None) -> int:
        """Remove groups (their tracks and views with them): by id, all, or last seen more than
        ``older_than`` seconds ago. Returns how many groups went."""
        def work(tx: _Tx):
            if everything:
                (count,) = tx.execute("SELECT COUNT(*) FROM unknown_groups").fetchone()
                tx.execute("DELETE FROM unknown_groups")
            elif older_than is not None:
                cutoff = time.time() - older_than
                (count,) = tx.execute("SELECT COUNT(*) FROM unknown_groups WHERE last_seen < ?", (cutoff,)).fetchone()
                tx.execute("DELETE FROM unknown_groups WHERE last_seen < ?", (cutoff,))
            else:
                missing = [g for g in group_ids
                           if tx.execute("SELECT 1 FROM unknown_groups WHERE id = ?", (int(g),)).fetchone() is None]
                if missing:
                    raise UserError(f"no unknown group {missing[0]} in gallery {self.store.location}: "
                                    f"`python -m realtime unknowns` lists them")
                tx.executemany("DELETE FROM unknown_groups WHERE id = ?", [(int(g),) for g in group_ids])
                count = len(set(group_ids))
            return int(count)
        return self._write(work, "nothing was forgotten, the gallery is as before")
