"""Nearest enrolled person for each face: pure, vectorised numpy.

Three ways to measure how far a face is from a person (``recognition.match``):

- ``nearest``: their closest sample (face_recognition's way);
- ``mean``: their mean embedding;
- ``sample-or-mean``: the nearer of their closest sample and their mean *direction* (the mean
  made unit length, so it does not drift toward strangers as it shrinks with more, varied
  samples). A face like one enrolment photo is matched by that photo; a face between several
  is matched by their centre, which lies nearer to it than any one of them. On held-out people
  enrolled from 3-5 photos it names more of them at the same share of strangers named
  (training/EXPERIMENTS.md).

The gallery matrix is turned into an :class:`Index` once per gallery change (norms and per-person
means precomputed), so matching a frame is one matrix product however many samples there are.
Large galleries also get int8 scores (:mod:`realtime.int8_scores`): they rule out almost every
row at a quarter of the memory traffic, and only the rows they cannot rule out are compared in
float32, so the answer is the same as the full float32 search.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from realtime.int8_scores import INT8_MIN_ROWS, Int8Scorer

# If the int8 bound leaves more than this share of the rows in play (a gallery of near-copies),
# one float32 pass over everything is cheaper than gathering them.
RERANK_MAX_SHARE = 0.25


@dataclass(frozen=True)
class Match:
    nearest: str | None      # closest person whatever the distance (None: empty gallery)
    distance: float          # Euclidean distance to them (inf: empty gallery)
    name: str | None         # nearest if distance <= threshold, else None (unknown)


@dataclass(frozen=True)
class Index:
    """Samples ``(n, d)``, their person index ``(n,)`` and the person names."""

    embeddings: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]
    sq_norms: np.ndarray
    means: np.ndarray
    mean_sq_norms: np.ndarray
    int8: Int8Scorer | None = None     # large galleries only (INT8_MIN_ROWS)
    unit_means: np.ndarray | None = None   # each person's mean direction, at their samples' length
    unit_mean_sq_norms: np.ndarray | None = None

    @classmethod
    def build(cls, embeddings: np.ndarray, labels: Sequence[int], names: Sequence[str],
              int8_min_rows: int = INT8_MIN_ROWS) -> "Index":
        emb = np.asarray(embeddings, np.float32)
        emb = np.ascontiguousarray(emb.reshape(len(labels), emb.shape[-1] if emb.ndim == 2 else -1))
        lab = np.asarray(labels, np.int64).reshape(-1)
        k = len(names)
        d = emb.shape[1] if emb.ndim == 2 else 0
        means = np.zeros((k, d), np.float32)
        sq_norms = np.einsum("ij,ij->i", emb, emb)
        # Each mean direction at the length of the person's samples (1 for unit embeddings).
        sample_lengths = np.zeros(k, np.float32)
        if len(lab):
            counts = np.maximum(np.bincount(lab, minlength=k), 1).astype(np.float32)
            np.add.at(means, lab, emb)
            means /= counts[:, None]
            sample_lengths = (np.bincount(lab, weights=np.sqrt(sq_norms), minlength=k) / counts).astype(np.float32)
        int8 = Int8Scorer(emb, sq_norms) if len(lab) >= int8_min_rows and d else None
        lengths = np.linalg.norm(means, axis=1, keepdims=True)
        unit_means = np.ascontiguousarray(
            np.divide(means * sample_lengths[:, None], lengths, out=np.zeros_like(means), where=lengths > 0), np.float32)
        return cls(emb, lab, tuple(names), sq_norms, means, np.einsum("ij,ij->i", means, means), int8,
                   unit_means, np.einsum("ij,ij->i", unit_means, unit_means))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, np.ndarray]], dim: int = 0,
                  int8_min_rows: int = INT8_MIN_ROWS) -> "Index":
        """The index of ``(name, embedding)`` rows, whatever store they came from; a person's
        rows need not be adjacent (people are numbered in order of first appearance)."""
        people: dict[str, int] = {}
        labels: list[int] = []
        vectors: list[np.ndarray] = []
        for name, vector in rows:
            labels.append(people.setdefault(name, len(people)))
            vectors.append(vector)
        if not vectors:
            return cls.empty(dim)
        return cls.build(np.stack(vectors), labels, list(people), int8_min_rows)

    @classmethod
    def empty(cls, dim: int = 0) -> "Index":
        return cls.build(np.zeros((0, dim), np.float32), [], [])

    def __len__(self) -> int:
        return len(self.labels)


def nearest_rows(queries: np.ndarray, refs: np.ndarray, ref_sq_norms: np.ndarray,
                 int8: Int8Scorer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query's nearest row of ``refs`` and the exact Euclidean distance to it.

    One GEMV/GEMM over the contiguous float32 ``(n, d)`` matrix (``refs @ q.T``, no transpose
    copy), ranking by ``|r|^2 - 2 q.r`` (``|q|^2`` is the same for every row), then the distance
    recomputed exactly for the winners only: no ``(m, n)`` square roots, no extra passes.
    With ``int8`` scores, the float32 ranking covers only the rows those cannot rule out."""
    q = np.ascontiguousarray(queries, np.float32)
    rows = _scan(q, refs, ref_sq_norms) if int8 is None else _nearest_via_int8(q, refs, ref_sq_norms, int8)
    diff = refs[rows] - q
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return rows, dist


def _scan(q: np.ndarray, refs: np.ndarray, ref_sq_norms: np.ndarray) -> np.ndarray:
    """Each query's row of smallest ``|r|^2 - 2 q.r``: one product over every row."""
    scores = refs @ q.T                     # (n, m)
    scores *= -2.0
    scores += ref_sq_norms[:, None]
    return np.argmin(scores, axis=0)        # first minimum: ties go to the first row


def int8_candidates(approx: np.ndarray, bound: float) -> np.ndarray:
    """Rows whose exact score may still be the smallest: the exact scores lie within ``bound`` of
    the approximate ones, so a row whose approximate score is more than ``2 * bound`` above the
    smallest approximate score is beaten for sure. Sorted, so ties still go to the first row."""
    return np.flatnonzero(approx <= approx.min() + 2.0 * bound)


def _nearest_via_int8(q: np.ndarray, refs: np.ndarray, ref_sq_norms: np.ndarray, int8: Int8Scorer) -> np.ndarray:
    approx = int8.scores(q)                     # (m, n)
    bounds = int8.bound(q)
    rows = np.empty(len(q), np.int64)
    for i in range(len(q)):
        cand = int8_candidates(approx[i], float(bounds[i]))
        if len(cand) > RERANK_MAX_SHARE * len(refs):
            rows[i] = _scan(q[i:i + 1], refs, ref_sq_norms)[0]
        else:
            rows[i] = cand[_scan(q[i:i + 1], refs[cand], ref_sq_norms[cand])[0]]
    return rows


def nearest_person_by_sample(index: Index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's person and distance by their closest sample (face_recognition's way)."""
    sample, best = nearest_rows(queries, index.embeddings, index.sq_norms, index.int8)
    return index.labels[sample], best


def nearest_person_by_mean(index: Index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's person and distance by their mean embedding."""
    return nearest_rows(queries, index.means, index.mean_sq_norms)


def nearest_person_by_sample_or_mean(index: Index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearer of the closest sample and the closest mean direction: min over people of
    min(sample, centre) is the smaller of the two searches' winners."""
    person, best = nearest_person_by_sample(index, queries)
    centre, centre_d = nearest_rows(queries, index.unit_means, index.unit_mean_sq_norms)
    nearer = centre_d < best
    return np.where(nearer, centre, person), np.where(nearer, centre_d, best)


# recognition.match -> how far a face is from each person (the nearest person and that distance).
MATCHERS = {
    "nearest": nearest_person_by_sample,
    "mean": nearest_person_by_mean,
    "sample-or-mean": nearest_person_by_sample_or_mean,
}


def match(index: Index, queries: np.ndarray, threshold: float, mode: str = "nearest") -> list[Match]:
    """One :class:`Match` per query row; ties go to the first sample (stable, deterministic)."""
    if mode not in MATCHERS:
        raise ValueError(f"unknown match mode {mode!r}")
    queries = np.asarray(queries, np.float32)
    m = len(queries)
    if m == 0:
        return []
    if len(index) == 0:
        return [Match(None, float("inf"), None)] * m
    person, best = MATCHERS[mode](index, queries)
    out = []
    for p, d in zip(person.tolist(), best.tolist()):
        name = index.names[p]
        out.append(Match(name, float(d), name if d <= threshold else None))
    return out
