"""Verification metrics on pair distances: ROC, AUC, EER, thresholds (pure numpy).

Convention everywhere: a pair is accepted as the same person when ``distance <= threshold``.
``distances`` and ``same`` are 1-D arrays; ``same`` is True for same-person pairs.
"""
from __future__ import annotations

import numpy as np


def _as_arrays(distances, same) -> tuple[np.ndarray, np.ndarray]:
    distances = np.asarray(distances, dtype=np.float64).ravel()
    same = np.asarray(same, dtype=bool).ravel()
    if distances.shape != same.shape:
        raise ValueError(f"{distances.shape[0]} distances but {same.shape[0]} labels")
    return distances, same


def roc_points(distances, same) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-accept and true-accept rates at every distinct threshold, ascending.

    The first point is the threshold below every distance (accept nothing: 0, 0).
    """
    distances, same = _as_arrays(distances, same)
    order = np.argsort(distances, kind="mergesort")
    sorted_d, sorted_same = distances[order], same[order]
    positives, negatives = max(int(same.sum()), 1), max(int((~same).sum()), 1)
    true_accepts = np.cumsum(sorted_same)
    false_accepts = np.cumsum(~sorted_same)
    # keep the last index of each run of equal distances: ties are accepted together
    last = np.r_[np.nonzero(np.diff(sorted_d))[0], sorted_d.size - 1] if sorted_d.size else np.array([], int)
    thresholds = np.r_[-np.inf, sorted_d[last]]
    far = np.r_[0.0, false_accepts[last] / negatives]
    tar = np.r_[0.0, true_accepts[last] / positives]
    return far, tar, thresholds


def roc_auc(distances, same) -> float:
    """Area under the ROC: the chance a random same pair is closer than a random different pair."""
    far, tar, _ = roc_points(distances, same)
    return float(np.trapezoid(tar, far))


def equal_error_rate(distances, same) -> tuple[float, float]:
    """The rate where false accepts equal false rejects, and the threshold that gets closest."""
    far, tar, thresholds = roc_points(distances, same)
    frr = 1.0 - tar
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2.0), float(thresholds[i] if np.isfinite(thresholds[i]) else 0.0)


def threshold_at_far(distances, same, target_far: float = 0.01) -> tuple[float, float, float]:
    """The largest threshold whose false-accept rate stays at or below ``target_far``.

    Returns ``(threshold, far, frr)`` measured at that threshold. The threshold sits halfway
    to the next distance, so it does not sit exactly on a training pair.
    """
    distances, same = _as_arrays(distances, same)
    far, tar, thresholds = roc_points(distances, same)
    ok = np.nonzero(far <= target_far)[0]
    i = int(ok[-1])
    threshold = thresholds[i]
    if not np.isfinite(threshold):
        threshold = float(distances.min()) * 0.5 if distances.size else 0.0
    elif i + 1 < thresholds.size:
        threshold = (threshold + thresholds[i + 1]) / 2.0
    return float(threshold), float(far[i]), float(1.0 - tar[i])


def accuracy_at(distances, same, threshold: float) -> float:
    distances, same = _as_arrays(distances, same)
    return float(np.mean((distances <= threshold) == same)) if distances.size else 0.0


def best_threshold(distances, same, balanced: bool = False) -> float:
    """The threshold of highest accuracy, midway between neighbouring distances (O(n log n)).

    ``balanced`` maximises the mean of the true-accept and true-reject rates instead: use it
    when the pairs are mostly different people (all pairs of a set) but the threshold will
    serve balanced pairs (LFW's), or accuracy is won by rejecting everything.
    """
    distances, same = _as_arrays(distances, same)
    far, tar, thresholds = roc_points(distances, same)
    if thresholds.size == 1:
        return 0.0
    positives, negatives = int(same.sum()), int((~same).sum())
    correct = tar + (1.0 - far) if balanced else tar * positives + (1.0 - far) * negatives
    i = int(np.argmax(correct))
    if i == 0:
        return float(thresholds[1] - 1e-6)
    if i + 1 < thresholds.size:
        return float((thresholds[i] + thresholds[i + 1]) / 2.0)
    return float(thresholds[i] + 1e-6)


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` Euclidean distances (``|a|^2 + |b|^2 - 2 a.b``, one matrix product, in
    float64 so near-identical pairs do not lose their distance to rounding)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sq = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def all_pairs(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance and same-person flag of every pair ``i < j`` of a set of faces."""
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(labels), k=1)
    return distance_matrix(embeddings, embeddings)[i, j], labels[i] == labels[j]
