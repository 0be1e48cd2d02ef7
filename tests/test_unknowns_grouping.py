"""Unknown tracks grouped by person: agglomerative clustering (batch) and the live rule (join)."""
import numpy as np
import pytest

from realtime.unknowns.grouping import cluster, distances, join, pair_rates, purity


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def people(seed=0, count=6, tracks=4, views=3, dim=32, spread=0.15):
    """Tracks of ``count`` people: each person a random direction, each view that direction plus noise."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(count, dim)))
    items, truth = [], []
    for p in range(count):
        for _ in range(tracks):
            items.append(unit(centres[p] + spread * rng.normal(size=(views, dim)) / np.sqrt(dim) * 4))
            truth.append(p)
    return items, truth


def test_distances_are_euclidean():
    a, b = np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 0.0]])
    assert np.allclose(distances(a, b), [[0.0], [5.0]])


@pytest.mark.parametrize("linkage", ["average", "single", "complete"])
def test_batch_clustering_matches_scipy(linkage):
    hierarchy = pytest.importorskip("scipy.cluster.hierarchy")
    rng = np.random.default_rng(3)
    points = unit(rng.normal(size=(40, 8)))
    tracks = [points[i:i + 1] for i in range(40)]     # one view per track: scipy's setting
    threshold = 1.0
    ours = cluster(tracks, threshold, linkage)
    theirs = hierarchy.fcluster(hierarchy.linkage(points, method=linkage), threshold, criterion="distance")
    # The same partition, whatever the label numbers.
    assert len(set(ours)) == len(set(theirs)) > 1
    assert {frozenset(np.flatnonzero(np.asarray(ours) == g)) for g in set(ours)} == \
        {frozenset(np.flatnonzero(theirs == g)) for g in set(theirs)}


def test_average_linkage_of_tracks_is_the_mean_over_all_their_views():
    # Two tracks of 2 views: view distances 0.2, 1.0, 0.2, 1.0 -> mean 0.6; single 0.2, complete 1.0.
    a = np.array([[0.0, 0.0], [0.0, 0.8]])
    b = np.array([[0.2, 0.0], [0.2, 0.8]])
    d = distances(a, b)
    assert np.isclose(d.mean(), (0.2 + 0.2 + 2 * np.hypot(0.2, 0.8)) / 4)
    assert cluster([a, b], d.mean() + 1e-9) == [0, 0]
    assert cluster([a, b], d.mean() - 1e-9) == [0, 1]
    assert cluster([a, b], d.min() + 1e-9, "single") == [0, 0]
    assert cluster([a, b], d.max() - 1e-9, "complete") == [0, 1]


def test_people_apart_are_grouped_one_group_each():
    items, truth = people()
    labels = cluster(items, 0.8)
    assert purity(labels, truth) == 1.0
    assert pair_rates(labels, truth) == (0.0, 0.0)
    assert labels[0] == 0 and len(set(labels)) == 6


def test_join_a_new_track_starts_a_group_or_joins_the_nearest():
    items, truth = people(count=3, tracks=2)
    groups = {10: np.concatenate(items[0:2]), 20: np.concatenate(items[2:4])}   # persons 0 and 1
    assert join(items[4], groups, 0.8) == []              # person 2: nobody seen before
    assert join(items[2], {10: groups[10]}, 0.8) == []
    assert join(items[2], groups, 0.8) == [20]
    assert join(items[2], {}, 0.8) == []


def test_join_resumes_the_batch_clustering():
    # Tracks arriving one by one, each joined to the groups so far, end as the batch clustering does
    # when the people are apart (the live rule is the same clustering, resumed).
    items, truth = people(seed=5, count=5, tracks=3)
    order = np.random.default_rng(1).permutation(len(items))
    groups: dict[int, np.ndarray] = {}
    owner: dict[int, int] = {}
    for k in order:
        merged = join(items[k], groups, 0.8)
        gid = merged[0] if merged else len(groups) + 100
        views = [items[k]] + [groups.pop(g) for g in merged]
        groups[gid] = np.concatenate(views)
        for t, g in owner.items():
            if g in merged:
                owner[t] = gid
        owner[k] = gid
    online = [owner[k] for k in range(len(items))]
    assert purity(online, truth) == 1.0
    assert pair_rates(online, truth) == pair_rates(cluster(items, 0.8), truth) == (0.0, 0.0)


def test_a_track_between_two_groups_of_one_person_brings_them_together():
    # One person seen from the left (group 1) and from the right (group 2): apart at this threshold
    # (mean distance 0.8); a frontal track lies 0.4 from each, and merging goes on past the first group.
    left, right, front = np.array([[-0.4, 0.0]]), np.array([[0.4, 0.0]]), np.array([[0.0, 0.0]])
    groups = {1: left, 2: right}
    assert cluster([left, right], 0.7) == [0, 1]
    merged = join(front, groups, 0.7)
    assert sorted(merged) == [1, 2]
    # ... but not when the pair of groups stays beyond reach: average linkage of {front, left} to
    # right is (0.4 + 0.8) / 2 = 0.6.
    assert join(front, groups, 0.55) in ([1], [2])


def test_rates_and_purity_count_pairs_of_tracks():
    labels = [0, 0, 1, 1]
    truth = ["a", "a", "a", "b"]
    # Different-person pairs: (0,3), (1,3), (2,3): one together (2,3). Same-person: (0,1), (0,2), (1,2): two apart.
    merge, split = pair_rates(labels, truth)
    assert (merge, split) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert purity(labels, truth) == 0.75


def test_unknown_linkage_and_empty_tracks_are_refused():
    with pytest.raises(ValueError, match="linkage"):
        cluster([np.zeros((1, 2))], 1.0, "ward")
    with pytest.raises(ValueError, match="non-empty"):
        join(np.zeros((0, 2)), {1: np.zeros((1, 2))}, 1.0)
    assert cluster([], 1.0) == []
