"""Distillation: the student learns to place faces where the dlib teacher does, with triplet loss beside it.

The teacher (``training.teacher``) gives every training photo a 128-d embedding computed once on
dlib's own aligned chip. Each P x K batch (plus singletons: distillation needs no second photo)
is fitted to three terms, weighted in config:

- ``distill_weight`` x (1 - cosine(student, teacher)): each face goes where the teacher puts it;
- ``relation_weight`` x mean squared difference of the batch's student and teacher cosine
  similarity matrices: the geometry between faces, which is what matching reads;
- ``triplet_weight`` x the semi-hard triplet loss on the labels (FaceNet's objective).

With ``triplet_weight: 0`` this is distillation alone; ``method: triplet`` is triplet alone. The terms
are computed in ``training.losses``, each step by a ``training.trainers.DistillTrainer``.
"""
from __future__ import annotations

import logging

import keras
import numpy as np

from realtime.config import Config, resolve_path
from realtime.errors import UserError
from training.data import FaceSet, subset
from training.fitting import Result, fit, jit_compile, label_ids, schedule, validation_callbacks
from training.model import new_encoder
from training.sampling import augmentation, pk_dataset
from training.teacher import teacher_embeddings
from training.trainers import DistillTrainer

log = logging.getLogger(__name__)


def with_teacher(config: Config, train: FaceSet) -> tuple[FaceSet, np.ndarray]:
    """The faces the teacher could embed, and its unit-length embeddings of them."""
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


def train_distill(config: Config, train: FaceSet, validation: FaceSet | None = None) -> Result:
    t = config.training
    train, teacher = with_teacher(config, train)
    _, ids = label_ids(train.labels)
    encoder = new_encoder(config)
    trainer = DistillTrainer(encoder, t.distill_weight, t.relation_weight, t.triplet_weight, t.margin, t.mining)
    trainer.compile(optimizer=keras.optimizers.Adam(schedule(config)), jit_compile=jit_compile())
    batches = pk_dataset(train.crops, ids, t.people_per_batch, t.photos_per_person, t.singletons_per_batch, t.seed,
                         augmentation(t), targets=teacher)
    log.info("distillation: %d faces of %d people, batches of %d x %d + %d singletons, weights "
             "cosine %.2f, relation %.2f, triplet %.2f", len(train), len(set(train.labels.tolist())),
             t.people_per_batch, t.photos_per_person, t.singletons_per_batch,
             t.distill_weight, t.relation_weight, t.triplet_weight)
    history = fit(trainer, batches, epochs=t.epochs, steps_per_epoch=t.steps_per_epoch,
                  callbacks=validation_callbacks(encoder, validation))
    return Result(encoder, True, history)
