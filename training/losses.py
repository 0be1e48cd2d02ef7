"""The training losses and the numbers that show whether training collapses, for ``training.trainers``.

Pure TensorFlow, no I/O. Online triplet losses over a P x K batch: distances are squared L2
between embeddings (the margin is on squared distance, as in FaceNet); the logged mean
positive/negative distances are plain Euclidean, the unit used everywhere a user sees a
distance. A sample whose person has no other photo in the batch (a singleton) is only ever a
negative. Beside them: the distillation terms (a student against its teacher's embeddings) and
the seed's summed hinge on fixed triplets.
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


def triplet_loss_and_active(labels: tf.Tensor, embeddings: tf.Tensor, margin: float,
                            mining: str) -> tuple[tf.Tensor, tf.Tensor]:
    """(mean hinge over the batch's valid triplets, share of them with a loss > 0), from one mining pass.

    Mining is the costly part of a step, so both come from it (what that saves: training/EXPERIMENTS.md).
    Both are 0 when the batch has no valid triplet. An active share near 0 means nothing is left to
    learn; 1 with equal distances means the embeddings collapsed.
    """
    hinge, mask = triplet_terms(labels, embeddings, margin, mining)
    return _masked_mean(hinge, mask), _masked_mean(tf.cast(hinge > 0.0, tf.float32), mask)


def mean_positive_distance(labels: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
    """Mean Euclidean distance between photos of the same person in the batch."""
    pos, _ = _masks(labels)
    return _masked_mean(tf.sqrt(pairwise_sq_distances(embeddings) + 1e-12), pos)


def mean_negative_distance(labels: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
    """Mean Euclidean distance between photos of different people in the batch."""
    _, neg = _masks(labels)
    return _masked_mean(tf.sqrt(pairwise_sq_distances(embeddings) + 1e-12), neg)


def unit(x: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(tf.cast(x, tf.float32), axis=1, epsilon=1e-12)


def distillation_terms(student: tf.Tensor, teacher: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(mean 1 - cosine to the teacher, mean squared difference of the similarity matrices)."""
    s, t = unit(student), unit(teacher)
    cosine = 1.0 - tf.reduce_mean(tf.reduce_sum(s * t, axis=1))
    relation = tf.reduce_mean(tf.square(tf.matmul(s, s, transpose_b=True) - tf.matmul(t, t, transpose_b=True)))
    return cosine, relation


def seed_triplet_terms(anchors: tf.Tensor, positives: tf.Tensor, negatives: tf.Tensor,
                       margin: float) -> tuple[tf.Tensor, tf.Tensor]:
    """The seed's loss on fixed triplets: (hinge summed over the batch, share of triplets with a loss > 0).

    Squared distances of unnormalised embeddings, as the seed had them (its baseline)."""
    a, p, n = (tf.cast(e, tf.float32) for e in (anchors, positives, negatives))
    d = tf.reduce_sum(tf.square(a - p), axis=1) - tf.reduce_sum(tf.square(a - n), axis=1)
    return tf.reduce_sum(tf.maximum(d + margin, 0.0)), tf.reduce_mean(tf.cast(d + margin > 0.0, tf.float32))
