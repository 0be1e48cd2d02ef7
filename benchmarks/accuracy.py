"""Does speed cost accuracy? Share of face frames with a box, and with the right name.

Every frame of the celebrity5 video and of the clips shows one face. A frame counts as *boxed*
when the loop reports at least one face, as *named right* when its largest face carries the
right name (the clip's or photo's person; ``None`` = unknown for the un-enrolled stranger).
The fast loop runs every frame in order (it follows faces between detections); the baseline is
stateless per frame, so it may be scored on every ``stride``-th frame.
"""
from __future__ import annotations

import logging
from pathlib import Path

from benchmarks.inputs import STRANGER, person_of_clip, read_frames
from benchmarks.pipelines import Baseline, run_fast

log = logging.getLogger(__name__)


class Score:
    def __init__(self):
        self.frames = self.boxed = self.right = 0

    def add(self, truth: str | None, faces: list[tuple[tuple, str | None]]) -> None:
        self.frames += 1
        if faces:
            self.boxed += 1
            box, name = max(faces, key=lambda f: f[0][2] * f[0][3])
            self.right += name == truth
    def summary(self) -> dict:
        n = max(self.frames, 1)
        return {"frames": self.frames, "box": round(self.boxed / n, 4), "name": round(self.right / n, 4)}


def _truth(person: str) -> str | None:
    return None if person == STRANGER else person


def fast_score(video: Path, truth: list[str | None], recognizer, gallery, first: int = 0) -> dict:
    """Run the fast loop over the whole video; score frames from ``first`` on."""
    score = Score()

    def on_result(i, frame, result):
        if i >= first:
            score.add(truth[i], [(f.box, f.name) for f in result.faces])

    run_fast(video, recognizer, gallery, len(truth), on_result=on_result)
    return score.summary()


def baseline_score(video: Path, truth: list[str | None], baseline: Baseline, gallery, first: int = 0,
                   stride: int = 1) -> dict:
    score = Score()
    index = gallery.index()
    for i, frame in enumerate(read_frames(video, len(truth))):
        if i < first or (i - first) % stride:
            continue
        boxes, matches, _ = baseline.process(frame, index)
        score.add(truth[i], [(b, n) for b, (n, _) in zip(boxes, matches)])
    return score.summary()


def photo_truth(people: list[str]) -> list[str | None]:
    return [_truth(p) for p in people]


def clip_truth(clip: Path, frames: int) -> list[str]:
    return [person_of_clip(clip)] * frames
