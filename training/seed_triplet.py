"""The seed's baseline: fixed random (anchor, positive, negative) triplets, drawn once.

Kept to measure the other methods against. The draw is vectorised: sort samples by person,
then pick a positive by a random non-zero offset inside the anchor's own run, and a negative
by a random index into everything outside that run (the seed grew its triplet arrays with
``np.concatenate`` in a loop, which is quadratic).
"""
from __future__ import annotations

import numpy as np


def random_triplets(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``(count, 3)`` indices into ``labels``: anchor and positive share a person, the negative does not.

    Anchors are drawn from people with two or more photos only. Raises ValueError when there
    is no such person or only one person.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    uniq, inverse, counts = np.unique(labels[order], return_inverse=True, return_counts=True)
    if len(uniq) < 2:
        raise ValueError("random triplets need at least two people")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    eligible = np.flatnonzero(counts[inverse] >= 2)          # positions in sorted order
    if eligible.size == 0:
        raise ValueError("no person has two or more photos")
    anchor = rng.choice(eligible, size=count)
    group = inverse[anchor]
    start, n = starts[group], counts[group]
    offset = (anchor - start + rng.integers(1, n)) % n       # any other photo of the same person
    positive = start + offset
    r = rng.integers(0, len(labels) - n)                     # any photo outside the person's run
    negative = np.where(r < start, r, r + n)
    return np.stack([order[anchor], order[positive], order[negative]], axis=1)
