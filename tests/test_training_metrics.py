"""training.metrics: verification metrics on hand-made distances, and every pair of a set once."""
import numpy as np
import pytest

from training.metrics import (accuracy_at, best_threshold, equal_error_rate, roc_auc,
                              threshold_at_far)


def test_perfectly_separated_pairs_have_auc_one_and_zero_eer():
    distances = np.array([0.1, 0.2, 0.3, 0.9, 1.0, 1.1])
    same = np.array([1, 1, 1, 0, 0, 0], bool)
    assert roc_auc(distances, same) == pytest.approx(1.0)
    eer, threshold = equal_error_rate(distances, same)
    assert eer == 0.0 and 0.3 <= threshold < 0.9
    t = best_threshold(distances, same)
    assert 0.3 < t < 0.9 and accuracy_at(distances, same, t) == 1.0


def test_reversed_pairs_have_auc_zero():
    distances = np.array([0.1, 0.2, 0.9, 1.0])
    same = np.array([0, 0, 1, 1], bool)
    assert roc_auc(distances, same) == pytest.approx(0.0)


def test_threshold_at_far_never_exceeds_the_target():
    rng = np.random.default_rng(0)
    same = rng.random(2000) < 0.5
    distances = np.where(same, rng.normal(0.6, 0.2, 2000), rng.normal(1.2, 0.2, 2000))
    threshold, far, frr = threshold_at_far(distances, same, 0.01)
    measured_far = np.mean(distances[~same] <= threshold)
    assert far <= 0.01 and measured_far <= 0.01
    assert frr == pytest.approx(np.mean(distances[same] > threshold))
    assert 0.5 < roc_auc(distances, same) <= 1.0


def test_best_threshold_matches_brute_force_on_random_ties():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        distances, same = np.round(rng.random(n), 1), rng.random(n) < 0.5
        threshold = best_threshold(distances, same)
        brute = max(accuracy_at(distances, same, c) for c in np.r_[-1.0, distances, 2.0])
        assert accuracy_at(distances, same, threshold) == pytest.approx(brute)


def test_balanced_threshold_does_not_reject_everything_on_imbalanced_pairs():
    # 10 same pairs among 1,000 different ones: plain accuracy is best rejecting everything.
    rng = np.random.default_rng(2)
    same = np.r_[np.ones(10, bool), np.zeros(1000, bool)]
    distances = np.r_[rng.normal(0.6, 0.1, 10), rng.normal(0.9, 0.15, 1000)]
    plain, balanced = best_threshold(distances, same), best_threshold(distances, same, balanced=True)
    assert np.mean(distances[same] <= plain) < 0.5
    assert np.mean(distances[same] <= balanced) >= 0.8 and np.mean(distances[~same] <= balanced) <= 0.2


def test_all_pairs_are_every_pair_once_with_euclidean_distances():
    from training.metrics import all_pairs, distance_matrix
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 5))
    labels = np.array(["a", "a", "b", "c", "b", "a"])
    d, same = all_pairs(emb, labels)
    expected = [(np.linalg.norm(emb[i] - emb[j]), labels[i] == labels[j]) for i in range(6) for j in range(i + 1, 6)]
    np.testing.assert_allclose(d, [e[0] for e in expected], rtol=1e-12)
    assert same.tolist() == [e[1] for e in expected] and same.sum() == 4     # a: 3 pairs, b: 1
    assert distance_matrix(emb[:2], emb[:2])[0, 0] == 0.0
