"""Nearest enrolled person for each face: pure, vectorised numpy.

The gallery matrix is turned into an :class:`Index` once per gallery change (norms and per-person
means precomputed), so matching a frame is one matrix product however many samples there are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


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

    @classmethod
    def build(cls, embeddings: np.ndarray, labels: Sequence[int], names: Sequence[str]) -> "Index":
        emb = np.asarray(embeddings, np.float32)
        emb = np.ascontiguousarray(emb.reshape(len(labels), emb.shape[-1] if emb.ndim == 2 else -1))
        lab = np.asarray(labels, np.int64).reshape(-1)
        k = len(names)
        d = emb.shape[1] if emb.ndim == 2 else 0
        means = np.zeros((k, d), np.float32)
        if len(lab):
            np.add.at(means, lab, emb)
            counts = np.bincount(lab, minlength=k).astype(np.float32)
            means /= np.maximum(counts, 1)[:, None]
        return cls(emb, lab, tuple(names), np.einsum("ij,ij->i", emb, emb), means,
                   np.einsum("ij,ij->i", means, means))

    @classmethod
    def empty(cls, dim: int = 0) -> "Index":
        return cls.build(np.zeros((0, dim), np.float32), [], [])

    def __len__(self) -> int:
        return len(self.labels)


def pairwise_distances(queries: np.ndarray, refs: np.ndarray, ref_sq_norms: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distances ``(m, n)`` via ``|q|^2 + |r|^2 - 2 q.r`` (one BLAS call)."""
    q = np.asarray(queries, np.float32)
    r_sq = np.einsum("ij,ij->i", refs, refs) if ref_sq_norms is None else ref_sq_norms
    sq = np.einsum("ij,ij->i", q, q)[:, None] + r_sq[None, :] - 2.0 * (q @ refs.T)
    return np.sqrt(np.maximum(sq, 0.0))


def nearest_rows(queries: np.ndarray, refs: np.ndarray, ref_sq_norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query's nearest row of ``refs`` and the exact Euclidean distance to it.

    One GEMV/GEMM over the contiguous float32 ``(n, d)`` matrix (``refs @ q.T``, no transpose
    copy), ranking by ``|r|^2 - 2 q.r`` (``|q|^2`` is the same for every row), then the distance
    recomputed exactly for the winners only: no ``(m, n)`` square roots, no extra passes."""
    q = np.ascontiguousarray(queries, np.float32)
    scores = refs @ q.T                     # (n, m)
    scores *= -2.0
    scores += ref_sq_norms[:, None]
    rows = np.argmin(scores, axis=0)        # first minimum: ties go to the first row
    diff = refs[rows] - q
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return rows, dist


def match(index: Index, queries: np.ndarray, threshold: float, mode: str = "nearest") -> list[Match]:
    """One :class:`Match` per query row; ties go to the first sample (stable, deterministic)."""
    queries = np.asarray(queries, np.float32)
    m = len(queries)
    if m == 0:
        return []
    if len(index) == 0:
        return [Match(None, float("inf"), None)] * m
    if mode == "mean":
        person, best = nearest_rows(queries, index.means, index.mean_sq_norms)
    elif mode == "nearest":
        sample, best = nearest_rows(queries, index.embeddings, index.sq_norms)
        person = index.labels[sample]
    else:
        raise ValueError(f"unknown match mode {mode!r}")
    out = []
    for p, d in zip(person.tolist(), best.tolist()):
        name = index.names[p]
        out.append(Match(name, float(d), name if d <= threshold else None))
    return out
