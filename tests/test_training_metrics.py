"""Verification metrics and the LFW protocol bookkeeping, on hand-made distances."""
import os
from pathlib import Path

import numpy as np
import pytest

from realtime.errors import UserError
from training import lfw
from training.metrics import (accuracy_at, best_threshold, equal_error_rate, roc_auc,
                              threshold_at_far)

FACES_DATA = os.environ.get("FACES_DATA")


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


def test_ten_fold_accuracy_chooses_threshold_on_other_folds():
    distances = np.tile([0.1, 0.2, 0.8, 0.9], 10)
    same = np.tile([True, True, False, False], 10)
    folds = np.repeat(np.arange(10), 4)
    mean, std = lfw.ten_fold_accuracy(distances, same, folds)
    assert mean == 1.0 and std == 0.0


def test_read_pairs_parses_both_kinds_and_folds(tmp_path):
    text = "2\t1\nAnn\t1\t2\nBob\t1\tCid\t3\nDee\t2\t4\nEve\t1\tFay\t1\n"
    (tmp_path / "p.txt").write_text(text)
    pairs = lfw.read_pairs(tmp_path / "p.txt")
    assert [p.same for p in pairs] == [True, False, True, False]
    assert [p.fold for p in pairs] == [0, 0, 1, 1]
    assert lfw.pair_paths("/x", pairs[1]) == (Path("/x/Bob/Bob_0001.jpg"), Path("/x/Cid/Cid_0003.jpg"))
    assert lfw.people_in_pairs(tmp_path / "p.txt") == {"Ann", "Bob", "Cid", "Dee", "Eve", "Fay"}


def test_malformed_pairs_file_is_a_user_error(tmp_path):
    (tmp_path / "p.txt").write_text("1\t5\nAnn\t1\n")
    with pytest.raises(UserError, match="malformed|promises"):
        lfw.read_pairs(tmp_path / "p.txt")


@pytest.mark.skipif(not FACES_DATA, reason="FACES_DATA not set: the LFW pairs files are not available")
def test_real_pairs_files_match_the_protocol():
    pairs = lfw.read_pairs(Path(FACES_DATA) / "lfw_pairs" / "pairs.txt")
    assert len(pairs) == 6000 and sum(p.same for p in pairs) == 3000
    dev_test = lfw.people_in_pairs(Path(FACES_DATA) / "lfw_pairs" / "pairsDevTest.txt")
    dev_train = lfw.people_in_pairs(Path(FACES_DATA) / "lfw_pairs" / "pairsDevTrain.txt")
    assert dev_test and not (dev_test & dev_train)  # View 1 has disjoint people


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
