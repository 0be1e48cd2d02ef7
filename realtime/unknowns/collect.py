"""The live loop's side of unknown faces: per followed face, its best views while it stays unknown,
stored (and grouped) on the gallery's writer thread, never on the frame path.

A face is kept once it was unknown on ``unknowns.after`` encodings; only encodings on which no
enrolled person was within the threshold give views. A face that gets a name (sure, or voted) is
never kept: what was stored of it while it was unknown is taken back. The stored views of a face
are replaced when better ones came (at most every ``save_every`` seconds) and when it leaves.
"""
from __future__ import annotations

import concurrent.futures
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from realtime.boxes import Box, clip_box
from realtime.unknowns.quality import SHARPNESS_HALF, Caps, View, keep_best, sharpness, view_quality, would_keep

log = logging.getLogger("realtime")

THUMBNAIL_SIDE = 96       # pixels: the face and some of its surroundings, for people to look at
THUMBNAIL_MARGIN = 0.25   # of the box's side, on each side
# While a kept face stays without better views, its last time seen is stored this often (seconds).
SEEN_EVERY = 30.0


def thumbnail(frame: np.ndarray, box: Box) -> np.ndarray:
    """The box grown by THUMBNAIL_MARGIN, as an RGB square of THUMBNAIL_SIDE pixels (BGR frame in)."""
    x, y, w, h = (int(v) for v in box)
    side = int(round(max(w, h) * (1 + 2 * THUMBNAIL_MARGIN)))
    cx, cy = x + w // 2, y + h // 2
    x0, y0, cw, ch = clip_box((cx - side // 2, cy - side // 2, side, side), frame.shape)
    patch = frame[y0:y0 + ch, x0:x0 + cw]
    if patch.size == 0:
        patch = np.zeros((1, 1, 3), np.uint8)
    patch = cv2.resize(patch, (THUMBNAIL_SIDE, THUMBNAIL_SIDE),
                       interpolation=cv2.INTER_AREA if min(cw, ch) > THUMBNAIL_SIDE else cv2.INTER_LINEAR)
    return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)


@dataclass
class _Face:
    unknown: int = 0                        # encodings on which it was unknown
    views: list[View] = field(default_factory=list)
    changed: bool = False                   # views not stored yet
    stored: bool = False                    # a record was sent to the store
    saved_at: float = -float("inf")
    first: float = 0.0                      # when it was first and last seen unknown
    last: float = 0.0
    group: int | None = None                # its group once stored
    named: bool = False


class Collector:
    """Unknown faces of one live run. ``store``: the open gallery; ``threshold_for(groups)``: the
    grouping threshold (:func:`realtime.unknowns.grouping.group_threshold`); ``template``: the
    alignment template at the crop's size (None: no landmarks, views ranked by sharpness alone)."""

    def __init__(self, store, settings, threshold_for: Callable[[int], float], template: np.ndarray | None,
                 source: str, clock: Callable[[], float] = time.time):
        self.store = store
        self.settings = settings
        self.caps = Caps(settings.views_per_track, settings.views_per_group, settings.views_per_day,
                         settings.views_total)
        self.threshold_for = threshold_for
        self.template = template
        self.source = source
        self.clock = clock
        self.run = uuid.uuid4().hex[:12]          # this run's tracks, apart from every other run's
        self.faces: dict[int, _Face] = {}
        self.writes: list[concurrent.futures.Future] = []

    def key(self, track: int) -> str:
        return f"{self.run}:{track}"

    def group(self, track: int) -> int | None:
        face = self.faces.get(track)
        return None if face is None or face.named else face.group

    def offer(self, track: int, shown: str | None, label: str | None, embedding: np.ndarray, crop: np.ndarray,
              points: np.ndarray | None, score: float, frame: np.ndarray, box: Box) -> None:
        """One fresh encoding of a followed face: ``shown`` the name it shows, ``label`` the person
        within the threshold on this encoding (both None: unknown on it)."""
        face = self.faces.setdefault(track, _Face())
        if face.named:
            return
        if shown is not None:
            self._named(track, face)
            return
        if label is not None:
            return                           # within the threshold of someone on this frame: not a view of a stranger
        face.unknown += 1
        now = self.clock()
        face.first, face.last = face.first or now, now
        quality = self._quality(points, score, crop)
        if would_keep(face.views, quality, self.caps.per_track):
            view = View(now, quality, np.asarray(embedding, np.float32).copy(), np.ascontiguousarray(crop).copy(),
                        thumbnail(frame, box))
            face.views, taken = keep_best(face.views, view, self.caps.per_track)
            face.changed = face.changed or taken
        if face.unknown >= self.settings.after and face.changed and \
                (not face.stored or now - face.saved_at >= self.settings.save_every):
            self._save(track, face, now)
        elif face.stored and now - face.saved_at >= SEEN_EVERY:
            self._touch(track, face, now)

    def _quality(self, points, score: float, crop: np.ndarray) -> float:
        if points is None or self.template is None:
            v = sharpness(crop)
            return v / (v + SHARPNESS_HALF)
        return view_quality(score, points, crop, self.template)

    def _named(self, track: int, face: _Face) -> None:
        face.named, face.views = True, []
        if face.stored:
            self._submit("taking back a named face's unknown views", self.store.unknowns.withdraw, self.key(track))
            log.info("track %d was named: its unknown views are taken back", track)

    def _touch(self, track: int, face: _Face, now: float) -> None:
        face.saved_at = now
        self._submit("an unknown face's last time seen", self.store.unknowns.seen, self.key(track), face.last)

    def _save(self, track: int, face: _Face, now: float) -> None:
        face.stored, face.changed, face.saved_at = True, False, now
        future = self._submit("an unknown face's views", self.store.unknowns.record, self.key(track),
                              list(face.views), self.source, self.caps, self.threshold_for, (face.first, face.last))

        def done(f: concurrent.futures.Future) -> None:
            if not f.cancelled() and f.exception() is None:
                face.group = f.result()
        future.add_done_callback(done)

    def _submit(self, what: str, work, *args) -> concurrent.futures.Future:
        future = self.store.in_background(what, work, *args)
        self.writes = [f for f in self.writes if not f.done()] + [future]
        return future

    def step(self, alive) -> None:
        """After a frame: the faces no longer followed are stored a last time and forgotten."""
        for track in [t for t in self.faces if t not in alive]:
            self._leave(track)

    def _leave(self, track: int) -> None:
        face = self.faces.pop(track)
        if not face.named and face.changed and face.unknown >= self.settings.after:
            self._save(track, face, self.clock())
        elif not face.named and face.stored and face.last > face.saved_at:
            self._touch(track, face, self.clock())

    def finish(self, wait: float) -> None:
        """The run ended: every face still followed is stored a last time; wait up to ``wait`` s."""
        for track in list(self.faces):
            self._leave(track)
        if self.writes:
            concurrent.futures.wait(self.writes, timeout=wait)

    def name(self, track: int, name: str, limit: int) -> concurrent.futures.Future | None:
        """Name the group of a followed unknown face (its views stored first if they are not yet),
        on the writer thread; None when the face has no views to name it by."""
        face = self.faces.get(track)
        if face is None or face.named or not (face.views or face.stored):
            return None
        views, key = list(face.views), self.key(track)
        unknowns = self.store.unknowns

        def work():
            group = face.group
            if group is None or face.changed:
                group = unknowns.record(key, views, self.source, self.caps, self.threshold_for, (face.first, face.last))
            if group is None:
                raise ValueError("the face's views were dropped by the caps")
            return unknowns.name(group, name, limit)
        face.changed = False
        face.stored = True
        return self._submit(f"naming an unknown face {name}", work)
