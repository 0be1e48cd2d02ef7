"""The match threshold: where it comes from, and the range it may take.

A Euclidean distance between unit-length embeddings lies in [0, 2], so a threshold above 2 (or
infinite) accepts every face as someone, and NaN rejects everyone: both are refused wherever a
threshold enters (``encoder.json``, ``recognition.threshold``, ``--threshold``). The ``+`` key
stops at :func:`key_cap`, where unrelated faces would start to match.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from realtime.errors import UserError, shorten

# The range of a threshold on unit-length embeddings: (0, 2].
MIN_THRESHOLD = 1e-6
MAX_THRESHOLD = 2.0
# sqrt(2): the distance between two unrelated (orthogonal) unit embeddings; the + key stops there.
KEY_CAP = math.sqrt(2.0)
# The - key stops here (0 would reject everyone, and the overlay would show 0.00).
KEY_FLOOR = 0.01


def check_threshold(value: Any, where: str, normalized: bool = True) -> float:
    """``value`` as a float if it is a usable threshold, else a one-line UserError naming ``where``.

    Encoders without unit-length embeddings (``normalized: false``, the seed-triplet method) have
    no upper bound but finiteness.
    """
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    try:
        number = float(number) if number is not None else None
    except OverflowError:  # an int too large for a float
        number = math.inf
    top = MAX_THRESHOLD if normalized else math.inf
    if number is None or not math.isfinite(number) or not (0.0 < number <= top):
        bound = f"(0, {MAX_THRESHOLD:g}]" if normalized else "a finite number above 0"
        raise UserError(f"{where}: threshold must be {bound}, got {shorten(value)}: a distance between "
                        f"unit-length embeddings is at most 2, so a larger one matches every face to someone")
    return number


def gallery_threshold(info: dict, people: int, design: bool = True, curve: str = "open_set") -> float | None:
    """From ``encoder.json``'s open-set curve (``curve``: or another measured the same way, such as
    ``open_set_sure``): the threshold for a gallery of ``people`` people, or None when the encoder
    has no such curve.

    Each point of the curve was chosen so that strangers get a name on at most ``target_far`` of
    their faces against a gallery of that size: more people enrolled, more chances for a stranger,
    a tighter threshold. A gallery smaller than the design size (``open_set_gallery_people``, 100)
    still gets the design size's threshold: the curve's looser points assume independent faces, and
    a stranger who resembles an enrolled person is that person's lookalike on every frame (one of
    the shared clips was named on 36% of its frames at the 5-person point). Larger galleries get
    the point for the smallest measured size holding them (the largest measured beyond the curve).
    """
    metrics = _metrics(info)
    size = metrics.get("open_set_gallery_people")
    if design and isinstance(size, int) and not isinstance(size, bool):
        people = max(people, size)
    return curve_threshold(metrics.get(curve), people)


def _metrics(info: dict) -> dict:
    return info.get("metrics") if isinstance(info.get("metrics"), dict) else {}


def curve_points(curve) -> list[tuple[int, float]]:
    """``(gallery people, threshold)`` of a measured curve, by size (entries that are not both numbers skipped)."""
    if not isinstance(curve, list):
        return []
    return sorted((entry["gallery_people"], float(entry["threshold"])) for entry in curve
                  if isinstance(entry, dict) and isinstance(entry.get("gallery_people"), int)
                  and isinstance(entry.get("threshold"), (int, float)) and not isinstance(entry.get("threshold"), bool))


def curve_threshold(curve, people: int) -> float | None:
    """The point for the smallest measured gallery holding ``people`` (beyond the curve: its last)."""
    points = curve_points(curve)
    if not points:
        return None
    fits = [t for n, t in points if n >= max(1, people)]
    return fits[0] if fits else points[-1][1]


class ThresholdPolicy:
    """Which threshold a question gets, decided in one place for the API, the CLI and the live loop.

    ``--threshold`` (``flag``), else ``recognition.threshold``, else ``encoder.json``: for a gallery,
    the open-set point for its size; for verify, the one-person point. The ``+`` key stops at
    :meth:`cap`. A threshold the user did not set is warned about when it was measured with
    another matcher than the one in use."""

    def __init__(self, info: dict, recognition, flag: float | None = None):
        self.info = info
        self._said_beyond: set[int] = set()
        self.normalized = bool(info.get("normalized", True))
        self.design = check_threshold(info.get("threshold"), "encoder.json", self.normalized)
        if flag is not None:
            self.fixed: float | None = check_threshold(flag, "--threshold", self.normalized)
        elif recognition.threshold is not None:
            self.fixed = check_threshold(recognition.threshold, "recognition.threshold", self.normalized)
        else:
            self.fixed = None
            warn_if_uncalibrated(info, recognition.match)

    def for_gallery(self, people: int | None = None) -> float:
        """The threshold against a gallery of ``people`` (None: the design size's)."""
        if self.fixed is not None:
            return self.fixed
        self._say_if_beyond_measured(people)
        measured = gallery_threshold(self.info, max(people, 1)) if people is not None else None
        return check_threshold(measured, "encoder.json open_set", self.normalized) if measured is not None else self.design

    def _say_if_beyond_measured(self, people: int | None) -> None:
        points = curve_points(_metrics(self.info).get("open_set"))
        if people is None or not points or people <= points[-1][0] or people in self._said_beyond:
            return
        self._said_beyond.add(people)
        logging.getLogger("realtime").warning(
            "a gallery of %d people is larger than the largest measured for this encoder (%d): its threshold is "
            "that size's, and strangers may be named more often than measured (%s)", people, points[-1][0],
            "set recognition.threshold lower to be safe" if self.normalized else "set recognition.threshold")

    def pair(self) -> float:
        """The 1:1 question (verify two photos): the curve's one-person point as measured, not raised
        to the design gallery size (no gallery is searched, so there is one chance, not many)."""
        if self.fixed is not None:
            return self.fixed
        measured = gallery_threshold(self.info, 1, design=False)
        return check_threshold(measured, "encoder.json open_set", self.normalized) if measured is not None else self.design

    def cap(self, start: float) -> float:
        return key_cap(start, self.normalized)

    def sure(self, people: int, current: float) -> float:
        """Within this distance a match is sure: named on its first frame, without waiting for the
        vote. encoder.json's ``open_set_sure`` curve (measured like ``open_set``, at a tenth of its
        share of strangers named) for the gallery's size, never above the threshold in use;
        -inf (never sure) for an encoder without that curve."""
        measured = gallery_threshold(self.info, people, curve="open_set_sure")
        return -math.inf if measured is None else min(measured, current)


def calibration_mismatch(info: dict, match_mode: str) -> str | None:
    """A warning when ``encoder.json``'s threshold was measured for another ``recognition.match``
    (a distance to a person's mean is not a distance to their nearest sample), else None."""
    measured = _metrics(info).get("open_set_match")
    if isinstance(measured, str) and measured != match_mode:
        return (f"encoder.json's threshold was measured with recognition.match {measured}, this run matches "
                f"by {match_mode}: how often strangers get a name is not measured for it (use {measured}, "
                f"or set recognition.threshold)")
    return None


def warn_if_uncalibrated(info: dict, match_mode: str) -> None:
    """Log :func:`calibration_mismatch`'s warning, if any (the threshold comes from encoder.json)."""
    mismatch = calibration_mismatch(info, match_mode)
    if mismatch:
        logging.getLogger("realtime").warning("%s", mismatch)


def key_cap(start: float, normalized: bool = True) -> float:
    """The highest threshold the ``+`` key reaches: sqrt(2), or the starting one when that is higher."""
    return max(start, KEY_CAP if normalized else 2.0 * start)


def step_threshold(current: float, step: float, cap: float) -> float:
    """``current + step`` kept inside [KEY_FLOOR, cap]."""
    return float(min(cap, max(KEY_FLOOR, current + step)))
