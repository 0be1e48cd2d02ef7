"""Unknown faces grouped by person: agglomerative clustering of unknown tracks.

Each item is one unknown track (a face followed across frames, a few views of it kept), stood for
by its views' mean direction (:func:`track_embedding`): consecutive frames of one face differ by
expression, blur and pose (0.3-0.5 apart with the shipped encoder), and their mean steadies that.
Clusters start as single tracks; the two nearest clusters merge while their linkage distance is at
most the threshold (hierarchical agglomerative clustering cut at a distance, as
``scipy.cluster.hierarchy``'s ``linkage`` + ``fcluster(criterion="distance")`` does). The linkage
is the mean of the Euclidean distances between every member of one cluster and every member of the
other (average linkage, UPGMA): single linkage (the nearest pair) chains different people through
one odd sighting each, complete linkage (the farthest pair) splits a person seen in different
light. On LFW people never trained on, at the open-set threshold (``benchmarks/unknowns.py``),
single linkage put 26 times more pairs of different people in one group than average linkage
(0.28% against 0.011%), and complete linkage split more of each person (0.944 of same-person pairs
against 0.919) for about the same share of people merged (0.105 against 0.112). The other two are
kept for that measurement.

Live, tracks arrive one at a time, and groups already stored keep their ids. :func:`join` resumes
the same clustering where it stopped: the stored groups are the clusters (no two within the
threshold: that is where the clustering stopped), the new track is one more, and merging goes on.
Only the new track's cluster can have come within reach, so the answer is the list of stored groups
it merges with (none: a new group). The threshold is the encoder's own open-set threshold
(``encoder.json``, through :class:`realtime.thresholds.ThresholdPolicy`), for a gallery as large
as the groups (:func:`group_threshold`): each group is one more chance for a stranger to be taken
for someone seen before, exactly as each enrolled person is when a face is matched.

Pure NumPy; embeddings are rows of a float array.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from realtime.thresholds import gallery_threshold

LINKAGES = ("average", "single", "complete")


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(len(a), len(b))`` between two sets of embeddings."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


class _Blocks:
    """Linkage arithmetic: a block of view distances summed up so that merging two clusters only
    combines their summaries (the Lance-Williams update, for sums of distances and counts)."""

    def __init__(self, linkage: str):
        if linkage not in LINKAGES:
            raise ValueError(f"linkage must be one of {', '.join(LINKAGES)}, got {linkage!r}")
        self.linkage = linkage

    def summary(self, block: np.ndarray) -> tuple[float, int]:
        if self.linkage == "average":
            return float(block.sum()), int(block.size)
        return float(block.min() if self.linkage == "single" else block.max()), 1

    def combine(self, x, y):
        """Two summaries (numbers, or arrays of them) as the summary of both blocks together."""
        if self.linkage == "average":
            return x[0] + y[0], x[1] + y[1]
        return (np.minimum if self.linkage == "single" else np.maximum)(x[0], y[0]), x[1]

    @staticmethod
    def value(x: tuple[float, int]) -> float:
        return x[0] / x[1]


def track_embedding(views) -> np.ndarray:
    """A track's views ``(n, d)`` as one unit-length embedding: the direction of their mean."""
    mean = _as_views(views).mean(0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def _as_views(views) -> np.ndarray:
    v = np.asarray(views, np.float64)
    if v.ndim != 2 or len(v) == 0:
        raise ValueError("each track needs a non-empty (n, d) array of embeddings")
    return v


def cluster(tracks: Sequence[np.ndarray], threshold: float, linkage: str = "average") -> list[int]:
    """A group label for each track (0, 1, ... in order of each group's first track): the clusters
    left when no two are within ``threshold`` of each other. ``tracks``: each track's embeddings
    ``(n, d)``, the linkage taken over all of them (one row each: its :func:`track_embedding`)."""
    blocks = _Blocks(linkage)
    tracks = [_as_views(t) for t in tracks]
    n = len(tracks)
    if n == 0:
        return []
    sizes = np.array([len(t) for t in tracks])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    d = distances(np.concatenate(tracks), np.concatenate(tracks))
    # Per pair of clusters, the summary of their views' distances (symmetric), and its linkage value.
    if linkage == "average":
        sums = np.add.reduceat(np.add.reduceat(d, starts, axis=0), starts, axis=1)
        counts = np.outer(sizes, sizes).astype(np.float64)
    else:
        reduce = np.minimum if linkage == "single" else np.maximum
        sums = reduce.reduceat(reduce.reduceat(d, starts, axis=0), starts, axis=1)
        counts = np.ones((n, n))
    value = sums / counts
    np.fill_diagonal(value, np.inf)
    parent = list(range(n))
    alive = np.ones(n, bool)
    while True:
        i, j = divmod(int(np.argmin(value)), n)
        if not np.isfinite(value[i, j]) or value[i, j] > threshold:
            break
        i, j = min(i, j), max(i, j)
        # j merges into i: i's summaries with every other cluster combine j's (Lance-Williams).
        parent[j], alive[j] = i, False
        sums[i], counts[i] = blocks.combine((sums[i], counts[i]), (sums[j], counts[j]))
        sums[:, i], counts[:, i] = sums[i], counts[i]
        value[i] = value[:, i] = np.where(alive, sums[i] / counts[i], np.inf)
        value[j, :] = value[:, j] = np.inf
        value[i, i] = np.inf
    return _labels(parent)


def _labels(parent: list[int]) -> list[int]:
    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i
    numbers: dict[int, int] = {}
    return [numbers.setdefault(root(i), len(numbers)) for i in range(len(parent))]


def join(track: np.ndarray, groups: Mapping[int, np.ndarray], threshold: float,
         linkage: str = "average") -> list[int]:
    """The stored groups a new track merges with, in the order the clustering merges them (the
    nearest first); empty: the track starts a new group.

    ``track``: the new track's embeddings ``(n, d)`` (one row: its :func:`track_embedding`);
    ``groups``: each stored group's member embeddings by id, as left by earlier merging (no two
    within ``threshold``). Merging usually stops at one group; a track that lies between two
    groups of one person (seen from the left on Monday, from the right on Tuesday) can bring them
    within reach of each other, and then they become one."""
    blocks = _Blocks(linkage)
    track = _as_views(track)
    ids = [g for g, v in groups.items() if len(v)]
    if not ids:
        return []
    views = {g: _as_views(groups[g]) for g in ids}
    # The new cluster's summary against each stored group; grows as groups merge into it.
    link = {g: blocks.summary(distances(track, views[g])) for g in ids}
    merged: list[int] = []
    while link:
        nearest = min(link, key=lambda g: blocks.value(link[g]))
        if blocks.value(link[nearest]) > threshold:
            break
        merged.append(nearest)
        del link[nearest]
        for g in link:
            link[g] = blocks.combine(link[g], blocks.summary(distances(views[nearest], views[g])))
    return merged


def purity(labels: Sequence[int], truth: Sequence) -> float:
    """The share of tracks whose group's most common true person is their own (1.0: no group mixes people)."""
    best: dict[int, dict] = {}
    for label, person in zip(labels, truth):
        counts = best.setdefault(label, {})
        counts[person] = counts.get(person, 0) + 1
    return sum(max(c.values()) for c in best.values()) / max(len(labels), 1)


def pair_counts(labels: Sequence[int], truth: Sequence) -> tuple[int, int, int, int]:
    """``(different, merged, same, split)``: pairs of tracks of different people, those of them put
    in one group, pairs of tracks of one person, those of them put in different groups."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    same_group = labels[:, None] == labels[None, :]
    same_person = truth[:, None] == truth[None, :]
    upper = np.triu(np.ones_like(same_group), 1)
    different = upper & ~same_person
    same = upper & same_person
    return (int(different.sum()), int((same_group & different).sum()),
            int(same.sum()), int((~same_group & same).sum()))


def pair_rates(labels: Sequence[int], truth: Sequence) -> tuple[float, float]:
    """``(merge rate, split rate)``: of the pairs of tracks of different people, the share put in
    one group; of the pairs of tracks of one person, the share put in different groups (NaN when
    there are no such pairs)."""
    different, merged, same, split = pair_counts(labels, truth)
    return (merged / different if different else float("nan"),
            split / same if same else float("nan"))


def group_threshold(policy, groups: int) -> float:
    """How close a track must come to a group to join it: a fixed threshold (``--threshold``,
    ``recognition.threshold``) as it is, else ``encoder.json``'s open-set point for a gallery of
    ``groups`` people (raised to its design size, as for enrolled people: each group is one more
    chance for a stranger to be taken for someone seen before). ``policy``: a
    :class:`realtime.thresholds.ThresholdPolicy`."""
    if policy.fixed is not None:
        return policy.fixed
    measured = gallery_threshold(policy.info, max(groups, 1))
    return float(measured) if measured is not None else float(policy.design)
