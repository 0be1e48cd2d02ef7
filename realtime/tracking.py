"""Follow faces across frames by box overlap and vote on their name so labels don't flicker.

Pure logic: boxes in, track ids and voted names out; no OpenCV, no I/O.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Hashable, Sequence

from realtime.boxes import Box, iou


@dataclass
class Track:
    id: int
    box: Box
    missed: int = 0
    votes: deque = field(default_factory=deque)


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

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5, vote_frames: int = 5, vote_agree: int = 1):
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.vote_frames = vote_frames
        self.vote_agree = min(vote_agree, vote_frames)
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

    def vote(self, track_id: int, label: Hashable, nearest: Hashable = None) -> Hashable:
        """Record this frame's label for a track and return the vote over its last frames.

        ``nearest``: this frame's closest person whatever the distance, when known. The voted name
        is shown only while it is that person: when one face replaces another in the same place
        (the box overlaps, so the track goes on), the old face's votes must not name the new one
        for the frames they still outnumber it."""
        track = self.tracks[track_id]
        track.votes.append(label)
        shown = vote(list(track.votes), self.vote_agree)
        return shown if nearest is None or shown == nearest else None

    def reset(self) -> None:
        """Forget votes (after an enrollment, so the new name shows at once)."""
        for track in self.tracks.values():
            track.votes.clear()
