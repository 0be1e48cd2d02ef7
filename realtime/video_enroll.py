"""Enrollment samples from a video file, a stream or a camera, without the window.

Of a clip, the samples should be the one person it shows, sharp, and varied: candidate frames are
spread evenly over the clip; a candidate counts when its largest face is steady (the next frame's
box overlaps it, so the crop is not motion-blurred) and looks like the clip's main person (within
the threshold of the candidates' medoid, so a cut to someone else, or a bystander who is briefly
larger, is left out); ``samples`` of those, spread over the clip, are enrolled.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from realtime.errors import UserError
from realtime.boxes import iou

log = logging.getLogger("realtime")

# The largest box of a candidate frame and of the frame after it overlap at least this much.
STEADY_IOU = 0.6
# Candidates per wanted sample (more choice for spreading and for dropping bad frames), and at least this many.
CANDIDATES_PER_SAMPLE = 4
MIN_CANDIDATES = 24
# A live source (camera, stream) is watched this long for candidates (seconds, at least).
LIVE_SECONDS = 3.0


@dataclass(frozen=True)
class Candidate:
    frame: int
    box: tuple[int, int, int, int]
    embedding: np.ndarray


def candidate_frames(total: int, wanted: int) -> list[int]:
    """Frame numbers evenly spread over ``total`` frames, each leaving a next frame to compare with."""
    if total < 2:
        return [0] if total == 1 else []
    count = min(total - 1, max(wanted * CANDIDATES_PER_SAMPLE, MIN_CANDIDATES))
    return sorted(set(np.linspace(0, total - 2, count).round().astype(int).tolist()))


def main_person(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Which embeddings are within ``threshold`` of their medoid (the clip's main person)."""
    emb = np.asarray(embeddings, np.float32)
    if len(emb) <= 2:
        return np.ones(len(emb), bool)
    distances = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=-1)
    medoid = int(np.argmin(np.median(distances, axis=1)))
    return distances[medoid] <= threshold


def spread(items: Sequence, wanted: int) -> list:
    """``wanted`` items evenly spread over ``items`` (all of them when there are fewer)."""
    if len(items) <= wanted:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, wanted).round().astype(int)]


def video_samples(recognizer, source, wanted: int) -> tuple[np.ndarray, dict]:
    """Up to ``wanted`` embeddings of the main face in ``source`` (a :class:`realtime.capture.VideoSource`),
    and how they were chosen (for the log). ``recognizer`` is a :class:`realtime.recognizer.Recognizer`."""
    total = source.frame_count or int(round(source.fps * LIVE_SECONDS))
    picks = set(candidate_frames(total, wanted))
    candidates: list[Candidate] = []
    seen = unsteady = 0
    index, frame, pending = 0, source.read(), None
    while frame is not None and index < total:
        if pending is not None:  # the frame after a candidate: is the face where it was?
            box = recognizer.detect(frame)[:1]
            embedding = recognizer.encode_image(pending[2], [pending[1]]) if box and iou(box[0], pending[1]) >= STEADY_IOU \
                else []
            if len(embedding):
                candidates.append(Candidate(pending[0], pending[1], embedding[0]))
            else:
                unsteady += 1
            pending = None
        if index in picks:
            boxes = recognizer.detect(frame)
            if boxes:
                seen += 1
                pending = (index, boxes[0], frame)
        index += 1
        frame = source.read()
    if not candidates:
        raise UserError(f"{source.name}: no steady face in {len(picks)} frames looked at "
                        f"({seen} with a face): nothing enrolled")
    keep = main_person(np.stack([c.embedding for c in candidates]), recognizer.thresholds.for_gallery())
    chosen = spread([c for c, k in zip(candidates, keep) if k], wanted)
    stats = {"looked_at": len(picks), "with_face": seen, "unsteady": unsteady,
             "someone_else": int((~keep).sum()), "frames": [c.frame for c in chosen]}
    return np.stack([c.embedding for c in chosen]), stats
