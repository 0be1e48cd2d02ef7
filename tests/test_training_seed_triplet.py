"""training.seed_triplet: the seed's random triplets: who may be an anchor, who only a negative."""
import numpy as np

from training.seed_triplet import random_triplets

LABELS = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["solo1", "solo2", "solo3"])


def test_random_triplets_valid_and_singletons_not_anchors():
    t = random_triplets(LABELS, 5000, seed=1)
    assert (LABELS[t[:, 0]] == LABELS[t[:, 1]]).all()
    assert (t[:, 0] != t[:, 1]).all()
    assert (LABELS[t[:, 0]] != LABELS[t[:, 2]]).all()
    assert not any(LABELS[i].startswith("solo") for i in t[:, 0])
    assert set(LABELS[t[:, 2]].tolist()) >= {"solo1", "solo2", "solo3"}   # singletons do serve as negatives
