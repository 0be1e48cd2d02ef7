"""The training methods by name, each from labelled crops to a trained encoder.

- ``triplet``: P x K batches, online semi-hard or batch-hard mining on unit embeddings; a small
  student, or SFace's fine-tunes when ``model.backbone`` is ``sface`` (``training.finetune``).
- ``classifier``: the seed's "normal method", softmax over people; its penultimate layer,
  L2-normalised, is the encoder.
- ``seed-triplet``: the seed's fixed random triplets and summed hinge, unnormalised (baseline).
- ``distill``: the dlib teacher's embeddings, with the triplet loss beside them (``training.distill``).

Each is ``(config, faces, validation faces or None) -> training.fitting.Result``; the losses are
computed by the models of ``training.trainers``, the softmax by Keras' own.
"""
from __future__ import annotations

import logging
from typing import Callable

import keras
import numpy as np

from realtime.config import Config
from realtime.encoder import scale_crops
from training.data import FaceSet
from training.distill import train_distill
from training.finetune import train_sface
from training.fitting import (Result, fit, jit_compile, label_ids, prefixed, schedule, triplet_phases,
                              validation_callbacks)
from training.model import build_classifier, new_encoder
from training.sampling import augmentation, pk_dataset
from training.seed_triplet import random_triplets
from training.trainers import SeedTripletTrainer, TripletTrainer

log = logging.getLogger(__name__)


def _singletons(labels: np.ndarray, photos: int) -> int:
    return photos if (np.unique(labels, return_counts=True)[1] == 1).any() else 0


def fit_pk(model, config: Config, train: FaceSet, ids: np.ndarray, epochs: int, seed_offset: int = 0,
           callbacks=()) -> dict:
    """Fit ``model`` on P x K batches of ``train``'s augmented crops and their label ids."""
    t = config.training
    batches = pk_dataset(train.crops, ids, t.people_per_batch, t.photos_per_person,
                         _singletons(ids, t.photos_per_person), seed=t.seed + seed_offset,
                         augmentation=augmentation(t))
    return fit(model, batches, epochs=epochs, steps_per_epoch=t.steps_per_epoch, callbacks=list(callbacks))


def _compiled_classifier(encoder, people: int, learning_rate):
    classifier = build_classifier(encoder, people)
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                       metrics=["accuracy"], jit_compile=jit_compile())
    return classifier


def train_triplet(config: Config, train: FaceSet, validation: FaceSet | None = None) -> Result:
    if config.model.backbone == "sface":
        return train_sface(config, train, validation)
    t = config.training
    _, ids = label_ids(train.labels)
    encoder = new_encoder(config)
    callbacks = validation_callbacks(encoder, validation)
    history = {}
    warm = t.warm_start_epochs if not t.init else 0
    if warm:
        # With few faces, a softmax warm start gives the mining a sensible embedding to start from.
        classifier = _compiled_classifier(encoder, int(ids.max()) + 1, schedule(config, warm))
        log.info("warm start: %d classifier epochs before the triplet epochs", warm)
        history = prefixed(fit_pk(classifier, config, train, ids, warm, seed_offset=1, callbacks=callbacks), "warm_")
    for phase in triplet_phases(config):
        if phase.prefix:
            log.info("%s%d %s epochs", phase.prefix.replace("_", ": "), phase.epochs, phase.mining)
        # A fresh Adam each phase: the finishing phase starts its own schedule.
        trainer = TripletTrainer(encoder, t.margin, phase.mining)
        trainer.compile(optimizer=keras.optimizers.Adam(phase.learning_rate), jit_compile=jit_compile())
        history.update(prefixed(fit_pk(trainer, config, train, ids, phase.epochs, callbacks=callbacks), phase.prefix))
    return Result(encoder, True, history, report={
        "mining": t.mining, "finish_epochs": t.finish_epochs,
        "finish_mining": t.finish_mining if t.finish_epochs else None})


def train_classifier(config: Config, train: FaceSet, validation: FaceSet | None = None) -> Result:
    people, ids = label_ids(train.labels)
    encoder = new_encoder(config)
    classifier = _compiled_classifier(encoder, len(people), schedule(config))
    history = fit_pk(classifier, config, train, ids, config.training.epochs,
                     callbacks=validation_callbacks(encoder, validation))
    return Result(encoder, True, history, classifier=(classifier, people))


def classifier_accuracy(classifier, train: FaceSet, val: FaceSet) -> float:
    """Softmax top-1 on val faces (people unknown to the head count as misses)."""
    model, people = classifier
    pred = np.array(people)[model.predict(scale_crops(val.crops), verbose=0).argmax(1)]
    return float((pred == val.labels).mean())


def train_seed_triplet(config: Config, train: FaceSet, validation: FaceSet | None = None) -> Result:
    """Fixed random triplets, drawn once (steps x batch of them), fitted for ``epochs``."""
    t = config.training
    batch = t.people_per_batch * t.photos_per_person
    triplets = random_triplets(train.labels, t.steps_per_epoch * batch, seed=t.seed)
    encoder = new_encoder(config, normalize=False, batch_norm=False)
    trainer = SeedTripletTrainer(encoder, t.margin)
    trainer.compile(optimizer=keras.optimizers.Adam(schedule(config)))     # the seed's step: no XLA
    x = scale_crops(train.crops)
    history = fit(trainer, (x[triplets[:, 0]], x[triplets[:, 1]], x[triplets[:, 2]]), batch_size=batch,
                  epochs=t.epochs, shuffle=True, callbacks=validation_callbacks(encoder, validation))
    normalized = any(l.__class__.__name__ == "UnitNormalization" for l in encoder.layers)
    return Result(encoder, normalized, history)


# The methods by name: ``(config, faces, validation faces or None) -> Result``. A new method is one entry
# here, plus its name in the config schema's training.method choices (a test checks they agree).
METHODS: dict[str, Callable[..., Result]] = {
    "triplet": train_triplet,
    "classifier": train_classifier,
    "seed-triplet": train_seed_triplet,
    "distill": train_distill,
}


def train(config: Config, train_set: FaceSet, validation: FaceSet | None = None) -> Result:
    """Train by ``training.method``; ``validation`` faces make the validation curve of history.png."""
    return METHODS[config.training.method](config, train_set, validation)
