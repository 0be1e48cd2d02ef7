"""Triplet loss and mining on hand-made embeddings, where the right answer is known."""
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
    assert float(losses.triplet_loss(LABELS, emb, 0.2, mining)) == 0.0
    assert float(losses.active_fraction(LABELS, emb, 0.2, mining)) == 0.0
    assert float(losses.mean_negative_distance(LABELS, emb)) == pytest.approx(np.sqrt(2), abs=0.02)
    assert float(losses.mean_positive_distance(LABELS, emb)) < 0.05


@pytest.mark.parametrize("mining", ["semi-hard", "batch-hard"])
def test_positive_loss_when_margin_violated(mining):
    emb = separated()
    assert float(losses.triplet_loss(LABELS, emb, 2.5, mining)) > 0.0     # margin bigger than any gap
    mixed = _unit([[1, 0, 0], [0, 1, 0], [1, 0.05, 0], [0, 1, 0.05], [0, 0, 1], [0, 0.1, 1]])
    assert float(losses.triplet_loss(LABELS, mixed, 0.2, mining)) > 0.0


@pytest.mark.parametrize("mining", ["semi-hard", "batch-hard"])
def test_collapse_gives_loss_equal_to_margin(mining):
    emb = np.ones((6, 4), np.float32) / 2.0
    assert float(losses.triplet_loss(LABELS, emb, 0.2, mining)) == pytest.approx(0.2, abs=1e-5)
    assert float(losses.active_fraction(LABELS, emb, 0.2, mining)) == 1.0


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
    loss, _ = losses.seed_triplet_loss(0.5)
    a, p, n = np.zeros((2, 2)), np.array([[1.0, 0], [0, 0]]), np.array([[0, 2.0], [0, 0.1]])
    y = tf.constant(np.concatenate([a, p, n], axis=1), tf.float32)
    # triplet 1: 1 - 4 + 0.5 < 0 -> 0; triplet 2: 0 - 0.01 + 0.5 = 0.49
    assert float(loss(None, y)) == pytest.approx(0.49, abs=1e-5)


def test_logged_active_fraction_is_the_one_the_loss_mined():
    """The ``active`` metric reads what the loss found, instead of mining again: check they agree."""
    import keras
    from training.losses import active_fraction, keras_loss_and_metrics
    from training.model import build_encoder
    keras.utils.set_random_seed(3)
    encoder = build_encoder(16, 8)
    loss, metrics = keras_loss_and_metrics(0.2, "semi-hard")
    encoder.compile(keras.optimizers.SGD(0.0), loss=loss, metrics=metrics)   # lr 0: weights stay put
    x = np.random.default_rng(0).random((12, 16, 16, 3)).astype("float32")
    y = np.repeat(np.arange(3), 4)
    logged = encoder.evaluate(x, y, batch_size=12, verbose=0, return_dict=True)["active"]
    expected = float(active_fraction(y, encoder(x, training=False), 0.2, "semi-hard"))
    assert 0.0 < expected and logged == pytest.approx(expected, abs=1e-6)
