"""Enrolling the face in front of the camera (the ``e`` key): samples spread over a few seconds.

Pure logic: the live loop hands each frame's faces and embeddings to :meth:`KeyEnrolment.offer`;
when enough samples are taken the caller stores them. One sample per ``interval`` of the
largest face, so the samples see a few poses rather than one instant.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from realtime.boxes import Box

# An enrolment that sees no face for this long after its planned duration gives up.
GIVE_UP_AFTER = 5.0


@dataclass
class KeyEnrolment:
    name: str
    started: float
    interval: float
    wanted: int
    samples: list = field(default_factory=list)
    next_time: float = 0.0

    @classmethod
    def start(cls, name: str, t: float, samples: int, seconds: float) -> "KeyEnrolment":
        return cls(name, t, seconds / samples, samples, next_time=t)

    def due(self, t: float) -> bool:
        """Whether the next sample is due at ``t`` (the live loop then encodes the largest face)."""
        return t >= self.next_time

    def offer(self, boxes: list[Box], embeddings: np.ndarray, t: float) -> None:
        """Take the largest face's embedding when the next sample is due."""
        if len(boxes) and self.due(t):
            largest = max(range(len(boxes)), key=lambda i: boxes[i][2] * boxes[i][3])
            self.samples.append(embeddings[largest])
            self.next_time = t + self.interval

    @property
    def complete(self) -> bool:
        return len(self.samples) >= self.wanted

    def timed_out(self, t: float) -> bool:
        return t - self.started > self.interval * self.wanted + GIVE_UP_AFTER
