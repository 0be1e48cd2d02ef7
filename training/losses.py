"""Online triplet losses over a P x K batch, and the numbers that show whether training collapses.

Pure TensorFlow, no I/O. Distances are squared L2 between embeddings (the margin is on squared
distance, as in FaceNet); the logged mean positive/negative distances are plain Euclidean, the
unit used everywhere a user sees a distance. Every function has the Keras ``(y_true, y_pred)``
signature (labels, embeddings), so they plug into ``model.compile(loss=..., metrics=[...])``.

A sample whose person has no other photo in the batch (a singleton) is only ever a negative.
"""
from __future__ import annotations

import tensorflow as tf

BIG = 1e9


def pairwise_sq_distances(embeddings: tf.Tensor) -> tf.Tensor:
    """``(n, n)`` squared Euclidean distances, clipped at 0 against rounding."""
    e = tf.cast(embeddings, tf.float32)
    sq = tf.reduce_sum(tf.square(e), axis=1)
    d = sq[:, None] - 2.0 * tf.matmul(e, e, transpose_b=True) + sq[None, :]
    return tf.maximum(d, 0.0)


def _masks(labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(positive pairs without the diagonal, negative pairs) as bool ``(n, n)``."""
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    return tf.logical_and(same, tf.logical_not(eye)), tf.logical_not(same)


def semi_hard_mining(labels: tf.Tensor, sq_dist: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """For every anchor-positive pair (a, p): the negative FaceNet/TF-Addons would pick.

    The closest negative farther than the positive (semi-hard); if none exists, the farthest
    negative (so the loss stays easy rather than collapsing onto the hardest ones).
    Returns ``(pair mask (n, n), negative index (n, n), negative squared distance (n, n))``;
    entries outside the mask are meaningless.
    """
    pos, neg = _masks(labels)
    d_ap = sq_dist[:, :, None]                     # (a, p, 1)
    d_an = sq_dist[:, None, :]                     # (a, 1, n)
    neg3 = tf.broadcast_to(neg[:, None, :], tf.shape(d_an + d_ap))
    farther = tf.logical_and(neg3, d_an > d_ap)
    outside = tf.where(farther, tf.broadcast_to(d_an, tf.shape(neg3)), BIG)
    has_semi_hard = tf.reduce_any(farther, axis=2)
    semi_idx = tf.argmin(outside, axis=2, output_type=tf.int32)
    far = tf.where(neg, sq_dist, -BIG)             # (a, n)
    far_idx = tf.broadcast_to(tf.argmax(far, axis=1, output_type=tf.int32)[:, None], tf.shape(sq_dist))
    idx = tf.where(has_semi_hard, semi_idx, far_idx)
    pair_mask = tf.logical_and(pos, tf.reduce_any(neg, axis=1, keepdims=True))
    neg_d = tf.gather(sq_dist, idx, batch_dims=1)
    return pair_mask, idx, neg_d


def batch_hard_mining(labels: tf.Tensor, sq_dist: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per anchor: the farthest positive and the closest negative (Hermans et al. 2017).

    Returns ``(anchor mask (n,), hardest positive index, hardest negative index, per-anchor loss input
    d_ap - d_an)``; anchors without a positive or a negative in the batch are masked out.
    """
    pos, neg = _masks(labels)
    pos_idx = tf.argmax(tf.where(pos, sq_dist, -BIG), axis=1, output_type=tf.int32)
    neg_idx = tf.argmin(tf.where(neg, sq_dist, BIG), axis=1, output_type=tf.int32)
    mask = tf.logical_and(tf.reduce_any(pos, axis=1), tf.reduce_any(neg, axis=1))
    d_ap = tf.gather(sq_dist, pos_idx, batch_dims=1)
    d_an = tf.gather(sq_dist, neg_idx, batch_dims=1)
    return mask, pos_idx, neg_idx, d_ap - d_an


def _masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    mask = tf.cast(mask, tf.float32)
    return tf.reduce_sum(values * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def triplet_terms(labels: tf.Tensor, embeddings: tf.Tensor, margin: float, mining: str) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-triplet hinge values ``max(0, d_ap - d_an + margin)`` and the mask of valid triplets."""
    sq = pairwise_sq_distances(embeddings)
    if mining == "semi-hard":
        mask, _, d_an = semi_hard_mining(labels, sq)
        hinge = tf.maximum(sq - d_an + margin, 0.0)
    elif mining == "batch-hard":
        mask, _, _, diff = batch_hard_mining(labels, sq)
        hinge = tf.maximum(diff + margin, 0.0)
    else:
        raise ValueError(f"unknown mining {mining!r}")
    return hinge, mask


def triplet_loss(labels: tf.Tensor, embeddings: tf.Tensor, margin: float = 0.2, mining: str = "semi-hard") -> tf.Tensor:
    """Mean hinge over the valid triplets of the batch (0 when the batch has none)."""
    hinge, mask = triplet_terms(labels, embeddings, margin, mining)
    return _masked_mean(hinge, mask)


def active_fraction(labels: tf.Tensor, embeddings: tf.Tensor, margin: float = 0.2, mining: str = "semi-hard") -> tf.Tensor:
    """Share of valid triplets with loss > 0: near 0 means nothing left to learn, 1 with equal distances means collapse."""
    hinge, mask = triplet_terms(labels, embeddings, margin, mining)
    return _masked_mean(tf.cast(hinge > 0.0, tf.float32), mask)


def mean_positive_distance(labels: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
    """Mean Euclidean distance between photos of the same person in the batch."""
    pos, _ = _masks(labels)
    return _masked_mean(tf.sqrt(pairwise_sq_distances(embeddings) + 1e-12), pos)


def mean_negative_distance(labels: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
    """Mean Euclidean distance between photos of different people in the batch."""
    _, neg = _masks(labels)
    return _masked_mean(tf.sqrt(pairwise_sq_distances(embeddings) + 1e-12), neg)


def keras_loss_and_metrics(margin: float, mining: str) -> tuple:
    """``(loss, [metrics])`` closures named as they should appear in the Keras logs.

    Mining is the costly part of a step, so the loss keeps the share of active triplets it
    found in a variable and the ``active`` metric reads it, instead of mining a second time
    (what that saves: training/EXPERIMENTS.md). Keras computes the loss before the metrics of the same step.
    """
    last_active = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="last_active")

    def loss(y_true, y_pred):
        hinge, mask = triplet_terms(y_true, y_pred, margin, mining)
        last_active.assign(_masked_mean(tf.cast(hinge > 0.0, tf.float32), mask))
        return _masked_mean(hinge, mask)

    def active(y_true, y_pred):
        return tf.identity(last_active)

    def pos_dist(y_true, y_pred):
        return mean_positive_distance(y_true, y_pred)

    def neg_dist(y_true, y_pred):
        return mean_negative_distance(y_true, y_pred)

    return loss, [active, pos_dist, neg_dist]


def seed_triplet_loss(margin: float):
    """The seed's loss: outputs are [anchor | positive | negative] concatenated; summed hinge, no normalisation."""
    def seed_loss(y_true, y_pred):
        a, p, n = tf.split(tf.cast(y_pred, tf.float32), 3, axis=1)
        d_ap = tf.reduce_sum(tf.square(a - p), axis=1)
        d_an = tf.reduce_sum(tf.square(a - n), axis=1)
        return tf.reduce_sum(tf.maximum(d_ap - d_an + margin, 0.0))

    def active(y_true, y_pred):
        a, p, n = tf.split(tf.cast(y_pred, tf.float32), 3, axis=1)
        d = tf.reduce_sum(tf.square(a - p), axis=1) - tf.reduce_sum(tf.square(a - n), axis=1)
        return tf.reduce_mean(tf.cast(d + margin > 0.0, tf.float32))

    return seed_loss, [active]
