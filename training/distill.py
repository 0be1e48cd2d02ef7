"""Distillation: the student learns to place faces where the dlib teacher does, with triplet loss beside it.

The teacher (``training.teacher``) gives every training photo a 128-d embedding computed once on
dlib's own aligned chip. Each P x K batch (plus singletons: distillation needs no second photo)
is fitted to three terms, weighted in config:

- ``distill_weight`` x (1 - cosine(student, teacher)): each face goes where the teacher puts it;
- ``relation_weight`` x mean squared difference of the batch's student and teacher cosine
  similarity matrices: the geometry between faces, which is what matching reads;
- ``triplet_weight`` x the semi-hard triplet loss on the labels (FaceNet's objective).

With ``triplet_weight: 0`` this is distillation alone; ``method: triplet`` is triplet alone.
"""
from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from realtime.config import Config, resolve_path
from realtime.errors import UserError
from training.data import FaceSet, subset
from training.losses import _masked_mean, triplet_terms
from training.sampling import Augmentation, augmentation, pk_dataset

log = logging.getLogger(__name__)


def unit(x: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(tf.cast(x, tf.float32), axis=1, epsilon=1e-12)


def distillation_terms(student: tf.Tensor, teacher: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(mean 1 - cosine to the teacher, mean squared difference of the similarity matrices)."""
    s, t = unit(student), unit(teacher)
    cosine = 1.0 - tf.reduce_mean(tf.reduce_sum(s * t, axis=1))
    relation = tf.reduce_mean(tf.square(tf.matmul(s, s, transpose_b=True) - tf.matmul(t, t, transpose_b=True)))
    return cosine, relation


def split_targets(y_true: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Targets are packed as ``[label id, teacher embedding...]`` so Keras passes them as one tensor."""
    y_true = tf.cast(y_true, tf.float32)
    return tf.cast(tf.round(y_true[:, 0]), tf.int32), y_true[:, 1:]


def keras_loss_and_metrics(distill_weight: float, relation_weight: float, triplet_weight: float,
                           margin: float, mining: str = "semi-hard") -> tuple:
    """``(loss, [metrics])`` for ``model.compile``; metrics read what the loss computed (no second pass)."""
    last = {name: tf.Variable(0.0, trainable=False, dtype=tf.float32, name=f"last_{name}")
            for name in ("cosine", "relation", "triplet", "active")}

    def loss(y_true, y_pred):
        labels, teacher = split_targets(y_true)
        cosine, relation = distillation_terms(y_pred, teacher)
        total = distill_weight * cosine + relation_weight * relation
        last["cosine"].assign(cosine)
        last["relation"].assign(relation)
        if triplet_weight:
            hinge, mask = triplet_terms(labels, y_pred, margin, mining)
            triplet = _masked_mean(hinge, mask)
            last["triplet"].assign(triplet)
            last["active"].assign(_masked_mean(tf.cast(hinge > 0.0, tf.float32), mask))
            total = total + triplet_weight * triplet
        return total

    def reader(name):
        def metric(y_true, y_pred):
            return tf.identity(last[name])
        metric.__name__ = name
        return metric

    names = ["cosine", "relation"] + (["triplet", "active"] if triplet_weight else [])
    return loss, [reader(n) for n in names]


def distill_dataset(crops: np.ndarray, ids: np.ndarray, teacher: np.ndarray, people: int, photos: int,
                    singletons: int, seed: int, augmentation: Augmentation | None = Augmentation()) -> tf.data.Dataset:
    """``(images float32 [0, 1], [label, teacher...])`` P x K (+ singletons) batches, forever."""
    targets = np.concatenate([ids[:, None].astype(np.float32), teacher.astype(np.float32)], axis=1)
    return pk_dataset(crops, ids, people, photos, singletons, seed, augmentation, targets=targets)


def with_teacher(config: Config, train: FaceSet) -> tuple[FaceSet, np.ndarray]:
    """The faces the teacher could embed, and its unit-length embeddings of them."""
    from training.teacher import teacher_embeddings
    emb = teacher_embeddings(train.paths.tolist(), config.detection, resolve_path(config.training.cache_dir),
                             alignment=config.alignment)
    ok = np.isfinite(emb).all(axis=1)
    if not ok.any():
        raise UserError("the teacher found no face in any training photo: check the data")
    if not ok.all():
        log.info("teacher: %d of %d training faces have no teacher embedding and are left out",
                 int((~ok).sum()), len(ok))
    emb = emb[ok]
    return subset(train, ok), (centred_targets(emb) if config.training.center_teacher
                                else emb / np.linalg.norm(emb, axis=1, keepdims=True))


def centred_targets(embeddings: np.ndarray) -> np.ndarray:
    """Unit teacher embeddings with their common direction removed, unit length again.

    dlib's embeddings share a large common component: two strangers' unit embeddings have a
    cosine of about 0.83 (a same-person pair 0.95), so they fill a narrow cone, and a student
    pointing anywhere into it already scores a cosine of 0.9. Centred, strangers are about
    orthogonal (0.0) and a same-person pair stays close (0.70): the same ranking of distances,
    spread over the whole sphere where a small student and a triplet margin can use it.
    """
    unit_emb = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    centred = unit_emb - unit_emb.mean(axis=0, keepdims=True)
    return (centred / np.linalg.norm(centred, axis=1, keepdims=True)).astype(np.float32)


def train_distill(config: Config, train: FaceSet, validation: FaceSet | None = None):
    import keras
    from training.methods import Result, _fit, _quiet, _xla, label_ids, new_encoder, schedule, validation_callbacks
    t = config.training
    train, teacher = with_teacher(config, train)
    _, ids = label_ids(train.labels)
    encoder = new_encoder(config)
    loss, metrics = keras_loss_and_metrics(t.distill_weight, t.relation_weight, t.triplet_weight, t.margin, t.mining)
    encoder.compile(optimizer=keras.optimizers.Adam(schedule(config)), loss=loss, metrics=metrics, jit_compile=_xla())
    ds = distill_dataset(train.crops, ids, teacher, t.people_per_batch, t.photos_per_person,
                         t.singletons_per_batch, t.seed, augmentation(t))
    log.info("distillation: %d faces of %d people, batches of %d x %d + %d singletons, weights "
             "cosine %.2f, relation %.2f, triplet %.2f", len(train), len(set(train.labels.tolist())),
             t.people_per_batch, t.photos_per_person, t.singletons_per_batch,
             t.distill_weight, t.relation_weight, t.triplet_weight)
    history = _fit(encoder, ds, epochs=t.epochs, steps_per_epoch=t.steps_per_epoch, verbose=2 if _quiet() else 1,
                   callbacks=validation_callbacks(encoder, validation))
    return Result(encoder, True, {k: [float(v) for v in vals] for k, vals in history.history.items()})
