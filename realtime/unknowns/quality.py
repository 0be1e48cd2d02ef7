"""Which views of an unknown face are worth keeping, and how much is kept at most.

A view's quality is the product of four shares in [0, 1], each about one way a view fails:

- ``score``: YuNet's face score (how face-like the detector found it);
- ``resolution``: the eye distance in the frame against the eye distance in the encoder's crop
  (the alignment template at the encoder's input size), at most 1: a face smaller than the crop
  is enlarged and has lost detail, a larger one is shrunk and loses nothing the encoder sees;
- ``frontal``: from the five landmarks, how far the nose is from where the template puts it
  between the eyes (turned left or right) and between the eyes and the mouth (up or down);
- ``sharp``: the variance of the Laplacian of the aligned crop (grey, at :data:`SHARPNESS_SIDE`
  pixels so every encoder's crops are judged alike) as ``v / (v + SHARPNESS_HALF)``: a blurred
  frame (motion, focus) has little high-frequency energy.

A product, so a view bad in any one way ranks low whatever the others. Quality only ranks the
views of one track against each other; storage caps drop the oldest views, never by quality.
Pure: NumPy and OpenCV on arrays.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

# The side at which sharpness is measured (crops of any encoder's input size are resized to it).
SHARPNESS_SIDE = 64
# The Laplacian variance that counts as half sharp: the median of the aligned crops of LFW photos
# of people never trained on (benchmarks/unknowns.py measures it: 223; the shared clips' faces 502).
SHARPNESS_HALF = 223.0


def sharpness(crop: np.ndarray) -> float:
    """The variance of the Laplacian of a crop (RGB or grey uint8), at :data:`SHARPNESS_SIDE` pixels."""
    grey = crop if crop.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    if grey.shape[:2] != (SHARPNESS_SIDE, SHARPNESS_SIDE):
        shrink = min(grey.shape[:2]) > SHARPNESS_SIDE
        grey = cv2.resize(grey, (SHARPNESS_SIDE, SHARPNESS_SIDE),
                          interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _layout(points: np.ndarray) -> tuple[float, float, float]:
    """The nose's place between the eyes (0 at the first eye, 1 at the second, along the eye line),
    its distance below the eye line as a share of the mouth's, and the eye distance."""
    p = np.asarray(points, np.float64).reshape(5, 2)
    eye0, eye1, nose, mouth = p[0], p[1], p[2], (p[3] + p[4]) / 2.0
    axis = eye1 - eye0
    eyes = float(np.linalg.norm(axis))
    if eyes < 1e-6:
        return 0.5, 0.0, 0.0
    along = float(np.dot(nose - eye0, axis)) / eyes ** 2
    normal = np.array([-axis[1], axis[0]]) / eyes
    mouth_drop = float(np.dot(mouth - eye0, normal))
    nose_drop = float(np.dot(nose - eye0, normal))
    return along, nose_drop / mouth_drop if abs(mouth_drop) > 1e-6 else 0.0, eyes


def frontalness(points: np.ndarray, template: np.ndarray) -> float:
    """1 for a face whose five landmarks are laid out as the template's, falling to 0 as the nose
    moves to an eye's line (turned fully sideways) or to the eye or mouth line (tilted up or down)."""
    along, drop, eyes = _layout(points)
    along0, drop0, _ = _layout(template)
    if eyes == 0.0:
        return 0.0
    return _towards(along, along0) * _towards(drop, drop0)


def _towards(value: float, centre: float) -> float:
    """1 at ``centre``, falling linearly to 0 at 0 and at 1 (and beyond)."""
    span = (1.0 - centre) if value > centre else centre
    return float(np.clip(1.0 - abs(value - centre) / max(span, 1e-6), 0.0, 1.0))


def resolution(points: np.ndarray, template: np.ndarray) -> float:
    """The face's eye distance in the frame over the template's (in the encoder's crop), at most 1."""
    eyes = _layout(points)[2]
    wanted = _layout(template)[2]
    return float(min(1.0, eyes / wanted)) if wanted > 0 else 0.0


def view_quality(score: float, points: np.ndarray, crop: np.ndarray, template: np.ndarray) -> float:
    """How good a view is for naming the face later (0 worst, 1 best); ``template``: the alignment
    template's five points scaled to the crop (where the encoder expects the landmarks)."""
    v = sharpness(crop)
    sharp = v / (v + SHARPNESS_HALF)
    return float(np.clip(score, 0.0, 1.0)) * frontalness(points, template) * resolution(points, template) * sharp


@dataclass(frozen=True)
class View:
    """One kept view of an unknown face."""

    time: float                 # seconds since the epoch, when it was seen
    quality: float
    embedding: np.ndarray       # (d,) float32
    crop: np.ndarray            # the encoder's aligned input, RGB uint8
    thumbnail: np.ndarray       # the face with some surroundings, for people to look at, RGB uint8


def would_keep(kept: Sequence[View], quality: float, limit: int) -> bool:
    """Whether :func:`keep_best` would keep a view of ``quality`` (fewer than ``limit`` kept views are
    at least as good): asked before the view is built, so a full track makes no thumbnail."""
    return sum(v.quality >= quality for v in kept) < limit


def keep_best(kept: Sequence[View], view: View, limit: int) -> tuple[list[View], bool]:
    """The best ``limit`` of ``kept`` and ``view`` by quality (an equal one does not displace an
    earlier one), in time order, and whether ``view`` is among them."""
    if limit <= 0:
        return list(kept), False
    ranked = sorted([*kept, view], key=lambda v: -v.quality)[:limit]   # sorted is stable: earlier first
    return sorted(ranked, key=lambda v: v.time), any(v is view for v in ranked)


@dataclass(frozen=True)
class Caps:
    """How many views are kept at most: per track, per group, per calendar day, in total."""

    per_track: int = 5
    per_group: int = 20
    per_day: int = 500
    total: int = 2000


@dataclass(frozen=True)
class Stored:
    """What the caps look at of a stored view."""

    id: int
    group: int
    track: str
    time: float


def local_day(t: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(t).date()


def over_caps(views: Iterable[Stored], caps: Caps, day: Callable[[float], object] = local_day) -> list[int]:
    """The ids of the views to drop so that every cap holds, oldest first: within a track over its
    cap, a group over its cap, a day over its cap, then overall. Per group and per day first, so a
    regular visitor or one crowded day gives up its own oldest views rather than everyone else's."""
    alive = sorted(views, key=lambda v: (v.time, v.id))
    dropped: set[int] = set()
    for key, limit in ((lambda v: ("track", v.track), caps.per_track), (lambda v: ("group", v.group), caps.per_group),
                       (lambda v: ("day", day(v.time)), caps.per_day), (lambda v: "all", caps.total)):
        seen: dict = {}
        for v in reversed(alive):          # newest first: the newest ``limit`` of each key stay
            k = key(v)
            seen[k] = seen.get(k, 0) + 1
            if seen[k] > limit:
                dropped.add(v.id)
        alive = [v for v in alive if v.id not in dropped]
    return sorted(dropped, key=lambda i: i)
