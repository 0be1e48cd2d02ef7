"""training.losses: triplet mining, the distillation terms and the seed's loss on hand-made
embeddings, where the right answer is known."""
import numpy as np
import pytest
import tensorflow as tf

from training import losses


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


LABELS = np.array([0, 0, 1, 1, 2, 2], np.int32)


def separated():
    """Three tight pairs on orthogonal axes: every negative is sqrt(2) away, positives ~0."""
    return _unit([[1, 0.01, 0], [1, -0.01, 0], [0, 1, 0.01], [0, 1, -0.01], [0.01, 0, 1], [-0.01, 0, 1]])


@pytest.mark.parametrize("mining", ["semi-hard", "batch-hard"])
def test_zero_loss_when_classes_separated_by_margin(mining):
    emb = separated()
    loss, active = losses.triplet_loss_and_active(LABELS, emb, 0.2, mining)
    assert float(loss) == 0.0 and float(active) == 0.0
    assert float(losses.mean_negative_distance(LABELS, emb)) == pytest.approx(np.sqrt(2), abs=0.02)
    assert float(losses.mean_positive_distance(LABELS, emb)) < 0.05


@pytest.mark.parametrize("mining", ["semi-hard", "batch-hard"])
def test_positive_loss_when_margin_violated(mining):
    emb = separated()
    loss, active = losses.triplet_loss_and_active(LABELS, emb, 2.5, mining)     # margin bigger than any gap
    assert float(loss) > 0.0 and float(active) == 1.0
    mixed = _unit([[1, 0, 0], [0, 1, 0], [1, 0.05, 0], [0, 1, 0.05], [0, 0, 1], [0, 0.1, 1]])
    loss, active = losses.triplet_loss_and_active(LABELS, mixed, 0.2, mining)
    assert float(loss) > 0.0 and 0.0 < float(active)


@pytest.mark.parametrize("mining", ["semi-hard", "batch-hard"])
def test_collapse_gives_loss_equal_to_margin(mining):
    emb = np.ones((6, 4), np.float32) / 2.0
    loss, active = losses.triplet_loss_and_active(LABELS, emb, 0.2, mining)
    assert float(loss) == pytest.approx(0.2, abs=1e-5) and float(active) == 1.0


def test_active_is_the_share_of_valid_triplets_with_a_loss():
    # 1-D, margin 0.9 on squared distances; each (anchor, positive) pair takes its semi-hard negative:
    # (0, 1): 0.01 - 1.0 + 0.9 < 0; (1, 0): 0.01 - 0.81 + 0.9 = 0.1; (2, 3): 0.01 - 0.81 + 0.9 = 0.1;
    # (3, 2): 0.01 - 1.0 + 0.9 < 0. Two of four triplets active, the mean hinge 0.2 / 4.
    emb = np.array([[0.0], [0.1], [1.0], [1.1]], np.float32)
    loss, active = losses.triplet_loss_and_active(np.array([0, 0, 1, 1], np.int32), emb, 0.9, "semi-hard")
    assert float(active) == 0.5 and float(loss) == pytest.approx(0.05, abs=1e-5)


def test_semi_hard_picks_closest_negative_farther_than_positive():
    # 1-D points: anchor 0 at 0.0, its positive 1 at 0.5 (d_ap = 0.25).
    # Negatives: 2 at 0.3 (closer than the positive: hard, skipped), 3 at 0.6 (semi-hard, picked), 4 at 2.0.
    emb = np.array([[0.0], [0.5], [0.3], [0.6], [2.0]], np.float32)
    labels = np.array([0, 0, 1, 2, 3], np.int32)
    sq = losses.pairwise_sq_distances(emb)
    mask, idx, neg_d = losses.semi_hard_mining(labels, sq)
    assert bool(mask[0, 1]) and not bool(mask[0, 2]) and not bool(mask[0, 0])
    assert int(idx[0, 1]) == 3
    assert float(neg_d[0, 1]) == pytest.approx(0.36, abs=1e-5)


def test_semi_hard_falls_back_to_farthest_negative():
    # anchor 0 at 0, positive 1 at 3: every negative is closer than the positive -> take the farthest (index 3).
    emb = np.array([[0.0], [3.0], [0.5], [1.0]], np.float32)
    labels = np.array([0, 0, 1, 2], np.int32)
    _, idx, _ = losses.semi_hard_mining(labels, losses.pairwise_sq_distances(emb))
    assert int(idx[0, 1]) == 3


def test_batch_hard_picks_hardest_positive_and_negative():
    emb = np.array([[0.0], [0.5], [1.0], [0.3], [0.8], [5.0]], np.float32)
    labels = np.array([0, 0, 0, 1, 1, 2], np.int32)
    mask, pos_idx, neg_idx, _ = losses.batch_hard_mining(labels, losses.pairwise_sq_distances(emb))
    assert int(pos_idx[0]) == 2 and int(neg_idx[0]) == 3
    assert not bool(mask[5])            # a singleton is never an anchor


def test_singletons_are_never_anchors_in_semi_hard():
    labels = np.array([0, 0, 1, 2], np.int32)
    emb = _unit(np.random.default_rng(0).normal(size=(4, 8)))
    mask, _, _ = losses.semi_hard_mining(labels, losses.pairwise_sq_distances(emb))
    assert not np.asarray(mask)[2:].any()
    assert np.asarray(mask).sum() == 2


def test_seed_loss_sums_hinges():
    a, p, n = np.zeros((2, 2)), np.array([[1.0, 0], [0, 0]]), np.array([[0, 2.0], [0, 0.1]])
    # triplet 1: 1 - 4 + 0.5 < 0 -> 0; triplet 2: 0 - 0.01 + 0.5 = 0.49
    loss, active = losses.seed_triplet_terms(tf.constant(a), tf.constant(p), tf.constant(n), 0.5)
    assert float(loss) == pytest.approx(0.49, abs=1e-5) and float(active) == 0.5


def _unit_rows(seed, n=8, d=16):
    return _unit(np.random.default_rng(seed).normal(size=(n, d)))


def test_a_student_equal_to_its_teacher_has_no_distillation_loss():
    teacher = _unit_rows(0)
    cosine, relation = losses.distillation_terms(tf.constant(teacher), tf.constant(3.0 * teacher))  # scale does not matter
    assert float(cosine) == pytest.approx(0.0, abs=1e-6) and float(relation) == pytest.approx(0.0, abs=1e-6)
    cosine, relation = losses.distillation_terms(tf.constant(_unit_rows(1)), tf.constant(teacher))
    assert float(cosine) > 0.5 and float(relation) > 0.01
