"""Follow faces across frames by box overlap, decide when each face is encoded again, and vote on
its name so labels don't flicker.

Pure logic: boxes, distances and names in; track ids, what to encode and what to show out; no
OpenCV, no I/O.

A face is encoded when it appears, then again only when its answer may have changed: while its
name is still being decided, every ``encode_every`` frames, or when its box moved or changed
size. A name is shown at once when the match is sure (well inside the threshold), else once
``vote_agree`` of the face's last ``vote_frames`` answers agree; in between the face is
*deciding*, and shows the name it is deciding on.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

from realtime.boxes import Box, iou

NAMED, DECIDING, UNKNOWN = "named", "deciding", "unknown"


@dataclass
class Track:
    id: int
    box: Box
    missed: int = 0
    votes: deque = field(default_factory=deque)
    # What the last encoding of this face gave, and where the face was then.
    embedding: np.ndarray | None = None
    encoded_box: Box | None = None
    encoded_frame: int = -1
    is_face: bool = True            # False: alignment found no face in the box (a false detection)
    shown: str | None = None        # the name shown (None: unknown or deciding)
    candidate: str | None = None    # the name within the threshold on the last encoding
    nearest: str | None = None
    distance: float = float("inf")

    @property
    def state(self) -> str:
        if self.shown is not None:
            return NAMED
        return DECIDING if self.candidate is not None else UNKNOWN


def vote(labels: Sequence[Hashable], agree: int = 1) -> Hashable:
    """The name at least ``agree`` of ``labels`` give, or None (unknown).

    A name needs that many frames behind it, so one bad frame never shows a wrong name; among
    names with enough frames the most common wins, a tie going to the most recent.
    """
    counts = Counter(label for label in labels if label is not None)
    if not counts or max(counts.values()) < agree:
        return None
    top = max(counts.values())
    for label in reversed(labels):
        if label is not None and counts[label] == top:
            return label
    return None  # pragma: no cover


class Tracker:
    """Greedy IoU tracker: each box joins the unclaimed track it overlaps most (>= ``min_iou``)."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5, vote_frames: int = 5, vote_agree: int = 1,
                 encode_every: int = 1, encode_iou: float = 1.0):
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.vote_frames = vote_frames
        self.vote_agree = min(vote_agree, vote_frames)
        self.encode_every = encode_every
        self.encode_iou = encode_iou
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def update(self, boxes: Sequence[Box]) -> list[int]:
        """Assign a track id to each box (new ids for new faces); age and drop lost tracks."""
        pairs = sorted(((iou(box, t.box), i, tid) for i, box in enumerate(boxes) for tid, t in self.tracks.items()),
                       reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        claimed: set[int] = set()
        for overlap, i, tid in pairs:
            if overlap < self.min_iou or overlap <= 0:
                break
            if ids[i] is None and tid not in claimed:
                ids[i] = tid
                claimed.add(tid)
        for i, box in enumerate(boxes):
            if ids[i] is None:
                ids[i] = self._next_id
                self.tracks[self._next_id] = Track(self._next_id, tuple(box), votes=deque(maxlen=self.vote_frames))
                self._next_id += 1
                claimed.add(ids[i])
            else:
                track = self.tracks[ids[i]]
                track.box, track.missed = tuple(box), 0
        for tid in list(self.tracks):
            if tid not in claimed:
                self.tracks[tid].missed += 1
                if self.tracks[tid].missed > self.max_missed:
                    del self.tracks[tid]
        return ids  # type: ignore[return-value]

    def due(self, track_id: int, frame: int) -> bool:
        """Whether this face must be encoded on ``frame``: it is new, its name is still being
        decided, it was last encoded ``encode_every`` frames ago, or its box moved or changed size
        (overlaps the box it was encoded at less than ``encode_iou``)."""
        t = self.tracks[track_id]
        if t.encoded_box is None or frame - t.encoded_frame >= self.encode_every:
            return True
        if iou(t.box, t.encoded_box) < self.encode_iou:
            return True
        undecided = t.state == DECIDING or (t.state == UNKNOWN and t.is_face and len(t.votes) < self.vote_frames)
        return undecided

    def not_a_face(self, track_id: int, frame: int) -> None:
        """Alignment found no face in the track's box: hidden until a later encoding finds one."""
        t = self.tracks[track_id]
        t.is_face, t.encoded_box, t.encoded_frame, t.embedding = False, t.box, frame, None
        t.shown = t.candidate = t.nearest = None
        t.distance = float("inf")
        t.votes.clear()

    def encoded(self, track_id: int, frame: int, embedding: np.ndarray, label: Hashable, nearest: Hashable,
                distance: float, sure: bool = False) -> None:
        """Record a fresh encoding's answer and decide what the face shows.

        ``label``: the person within the threshold (None: beyond it); ``nearest``: the closest
        person whatever the distance. The name is shown at once when ``sure``; it stays while
        each encoding gives it again; otherwise the vote decides, and a voted name shows only
        while it is also this encoding's nearest person (when one face replaces another in the
        same place, the old face's votes must not name the new one)."""
        t = self.tracks[track_id]
        t.is_face, t.embedding, t.encoded_box, t.encoded_frame = True, embedding, t.box, frame
        t.nearest, t.distance, t.candidate = nearest, float(distance), label
        t.votes.append(label)
        if label is not None and (sure or label == t.shown):
            t.shown = label
            return
        voted = vote(list(t.votes), self.vote_agree)
        t.shown = voted if nearest is None or voted == nearest else None

    def reset(self) -> None:
        """Forget votes and answers (the gallery or the threshold changed): every face is encoded
        again on the next frame, and named anew."""
        for t in self.tracks.values():
            t.votes.clear()
            t.encoded_box, t.shown, t.candidate = None, None, None
