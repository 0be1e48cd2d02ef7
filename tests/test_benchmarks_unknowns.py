"""The pure parts of benchmarks/unknowns.py: the live rule replayed, and its scores."""
import numpy as np
import pytest

from benchmarks.unknowns import in_sets, online, score


def sightings(people=6, each=3, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    tracks, truth = [], []
    for p in range(people):
        for _ in range(each):
            v = centres[p] + 0.05 * rng.normal(size=dim)
            tracks.append((v / np.linalg.norm(v))[None, :])
            truth.append(f"p{p}")
    return tracks, truth


def test_the_live_rule_puts_each_person_in_one_group():
    tracks, truth = sightings()
    labels = online(tracks, lambda n: 0.8, np.random.default_rng(2).permutation(len(tracks)))
    result = score(labels, truth)
    assert (result["groups"], result["mixed_groups"], result["merge_rate"], result["split_rate"]) == (6, 0, 0.0, 0.0)
    # A threshold beyond every distance puts everyone in one group: all merged.
    everyone = score(online(tracks, lambda n: 2.0, range(len(tracks))), truth)
    assert (everyone["groups"], everyone["people_merged"], everyone["purity"]) == (1, 1.0, pytest.approx(3 / 18))


def test_sets_of_people_are_scored_together():
    tracks, truth = sightings(people=7)
    result = in_sets(tracks, truth, 3, lambda n: 0.8, seed=1)
    assert result["sets"] == 2 and result["people"] == 6         # the seventh person is left over
    assert result["groups"] == 6 and result["purity"] == 1.0 and result["split_rate"] == 0.0
    merged = in_sets(tracks, truth, 3, lambda n: 2.0, seed=1)
    assert merged["groups"] == 2 and merged["mixed_groups"] == 2 and merged["people_merged"] == 1.0
    # Of the different-person pairs within each set (2 sets x 27 pairs), every one merged.
    assert merged["merge_rate"] == 1.0
