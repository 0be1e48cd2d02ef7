"""P x K batches and the seed's random triplets: who may be an anchor, who only a negative."""
from collections import Counter

import numpy as np
import pytest

from training.sampling import augment, group_by_label, pk_batches
from training.seed_triplet import random_triplets

LABELS = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["solo1", "solo2", "solo3"])


def test_pk_batches_shape_and_singletons_never_anchor_people():
    gen = pk_batches(LABELS, people=2, photos=4, singletons=2, seed=3)
    for _ in range(50):
        idx = next(gen)
        assert len(idx) == 2 * 4 + 2
        people = LABELS[idx[:8]]
        counts = Counter(people.tolist())
        assert len(counts) == 2 and all(c == 4 for c in counts.values())
        assert not any(p.startswith("solo") for p in people)
        assert all(p.startswith("solo") for p in LABELS[idx[8:]])


def test_pk_batches_seeded():
    a = [next(pk_batches(LABELS, 3, 2, seed=7)) for _ in range(1)]
    b = [next(pk_batches(LABELS, 3, 2, seed=7)) for _ in range(1)]
    assert all((x == y).all() for x, y in zip(a, b))


def test_pk_batches_needs_a_person_with_two_photos():
    with pytest.raises(ValueError):
        next(pk_batches(np.array(["x", "y"]), 2, 2))


def test_group_by_label():
    groups, lonely = group_by_label(LABELS)
    assert sorted(len(g) for g in groups) == [2, 3, 5]
    assert sorted(LABELS[lonely].tolist()) == ["solo1", "solo2", "solo3"]


def test_random_triplets_valid_and_singletons_not_anchors():
    t = random_triplets(LABELS, 5000, seed=1)
    assert (LABELS[t[:, 0]] == LABELS[t[:, 1]]).all()
    assert (t[:, 0] != t[:, 1]).all()
    assert (LABELS[t[:, 0]] != LABELS[t[:, 2]]).all()
    assert not any(LABELS[i].startswith("solo") for i in t[:, 0])
    assert set(LABELS[t[:, 2]].tolist()) >= {"solo1", "solo2", "solo3"}   # singletons do serve as negatives


def test_augment_keeps_shape_and_range():
    x = np.random.default_rng(0).uniform(size=(6, 20, 20, 3)).astype(np.float32)
    y = np.asarray(augment(x))
    assert y.shape == x.shape and y.min() >= 0.0 and y.max() <= 1.0
