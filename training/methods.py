"""The three training methods, each from labelled crops to a trained encoder.

- ``triplet``: P x K batches, online semi-hard or batch-hard mining on unit embeddings.
- ``classifier``: the seed's "normal method", softmax over people; its penultimate layer,
  L2-normalised, is the encoder.
- ``seed-triplet``: the seed's fixed random triplets and summed hinge, unnormalised (baseline).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from realtime.config import Config, resolve_path
from realtime.errors import UserError
from training.data import FaceSet

log = logging.getLogger(__name__)

# Compile training steps with XLA: Keras' "auto" leaves it off on CPUs (what it gains: EXPERIMENTS.md).
XLA = True


@dataclass
class Result:
    encoder: object               # keras.Model: crops in [0, 1] -> embeddings
    normalized: bool
    history: dict
    classifier: object | None = None
    report: dict = field(default_factory=dict)    # method-specific settings for report.json


def label_ids(labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    people = sorted(set(labels.tolist()))
    return people, np.searchsorted(np.array(people), labels).astype(np.int32)


def schedule(config: Config, epochs: int | None = None, start: float | None = None, end: float | None = None):
    """Cosine decay from ``start`` to ``end`` over ``epochs`` (defaults: the run's learning rates and epochs)."""
    import keras
    t = config.training
    start, end = start or t.learning_rate, end or t.final_learning_rate
    return keras.optimizers.schedules.CosineDecay(
        start, decay_steps=(epochs or t.epochs) * t.steps_per_epoch, alpha=min(1.0, end / start))


def new_encoder(config: Config, normalize: bool = True, batch_norm: bool = True):
    """A fresh encoder, or the one in ``training.init`` to fine-tune."""
    from training.model import build_encoder
    if config.training.init:
        import keras
        path = resolve_path(config.training.init) / "encoder.keras"
        if not path.is_file():
            raise UserError(f"training.init: {path} not found: point --init at an exported model folder")
        encoder = keras.models.load_model(path, compile=False)
        if encoder.input_shape[1] != config.model.input_size:
            raise UserError(f"training.init: {path} takes {encoder.input_shape[1]}px faces, "
                            f"config says model.input_size {config.model.input_size}")
        log.info("fine-tuning %s", path)
        return encoder
    return build_encoder(config.model.input_size, config.model.embedding_size, config.model.backbone,
                         batch_norm=batch_norm, normalize=normalize,
                         dropout=config.model.dropout)


def _singletons(labels: np.ndarray, photos: int) -> int:
    return photos if (np.unique(labels, return_counts=True)[1] == 1).any() else 0


def fit_pk(model, config: Config, train: FaceSet, ids: np.ndarray, epochs: int, seed_offset: int = 0,
           callbacks=()) -> dict:
    from training.sampling import augmentation, pk_dataset
    t = config.training
    ds = pk_dataset(train.crops, ids, t.people_per_batch, t.photos_per_person,
                    _singletons(ids, t.photos_per_person), seed=t.seed + seed_offset, augmentation=augmentation(t))
    history = _fit(model, ds, epochs=epochs, steps_per_epoch=t.steps_per_epoch, callbacks=list(callbacks),
                   verbose=2 if _quiet() else 1)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def _fit(model, data, **kwargs):
    """``model.fit`` that also runs under ``MultiWorkerMirroredStrategy``.

    Keras 3 (3.15) cannot fit there by itself (keras-team/keras#20585): it builds a model made in a
    strategy scope from a sample batch that it first reduces across the workers, which fails for
    ``(x, y)`` batches, and it averages each step's scalar metrics over an axis they lack. So the
    model is built here from the dataset's spec and takes the strategy from the surrounding scope,
    and each step's metrics are not averaged over the workers (the gradients are, and the epoch's
    metrics are read from metric variables summed over all of them).
    """
    import tensorflow as tf
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        from keras.src.backend.tensorflow import trainer
        trainer._collective_all_reduce_multi_worker = lambda strategy: False
        model._symbolic_build(data_batch=data.element_spec)
        model._distribute_strategy = None
    return model.fit(data, **kwargs)


def _xla() -> bool:
    """XLA on one device only: under tf.distribute it compiles every replica's step for the first device."""
    import tensorflow as tf
    return XLA and not tf.distribute.has_strategy()


def _quiet() -> bool:
    import sys
    return not sys.stderr.isatty()


def train_triplet(config: Config, train: FaceSet, validation: FaceSet | None = None) -> Result:
    import keras
    t = config.training
    _, ids = label_ids(train.labels)
    encoder = new_encoder(config)
    callbacks = validation_callbacks(encoder, validation)
    history = {}
    warm = t.warm_start_epochs if not t.init else 0
    if warm:
        # With few faces, a softmax warm start gives the mining a sensible embedding to start from.
        from training.model import build_classifier
        classifier = build_classifier(encoder, int(ids.max()) + 1)
        classifier.compile(optimizer=keras.optimizers.Adam(schedule(config, warm)),
                           loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=_xla())
        log.info("warm start: %d classifier epochs before the triplet epochs", warm)
        history = {f"warm_{k}": v for k, v in fit_pk(classifier, config, train, ids, warm, seed_offset=1,
                                                                callbacks=callbacks).items()}
    _compile_triplet(encoder, t.margin, t.mining, schedule(config))
    history.update(fit_pk(encoder, config, train, ids, t.epochs, callbacks=callbacks))
    if t.finish_epochs:
        # From a trained encoder, batch-hard mining pushes apart the hardest pairs that semi-hard
        # mining leaves alone; from scratch it collapses.
        log.info("finish: %d %s epochs", t.finish_epochs, t.finish_mining)
        _compile_triplet(encoder, t.margin, t.finish_mining,
                         schedule(config, t.finish_epochs, t.finish_learning_rate, t.finish_final_learning_rate))
        history.update({f"finish_{k}": v for k, v in fit_pk(encoder, config, train, ids, t.finish_epochs,
                                                                   callbacks=callbacks).items()})
    return Result(encoder, True, history, report={
        "mining": t.mining, "finish_epochs": t.finish_epochs,
        "finish_mining": t.finish_mining if t.finish_epochs else None})


def _compile_triplet(encoder, margin: float, mining: str, learning_rate) -> None:
    """A fresh Adam each phase: the finishing phase starts its own schedule."""
    import keras
    from training.losses import keras_loss_and_metrics
    loss, metrics = keras_loss_and_metrics(margin, mining)
    encoder.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics, jit_compile=_xla())


def train_classifier(config: Config, train: FaceSet, validation: FaceSet | None = None) -> Result:
    import keras
    from training.model import build_classifier
    t = config.training
    people, ids = label_ids(train.labels)
    encoder = new_encoder(config)
    classifier = build_classifier(encoder, len(people))
    classifier.compile(optimizer=keras.optimizers.Adam(schedule(config)),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=_xla())
    history = fit_pk(classifier, config, train, ids, t.epochs, callbacks=validation_callbacks(encoder, validation))
    return Result(encoder, True, history, classifier=(classifier, people))


def train_seed_triplet(config: Config, train: FaceSet, validation: FaceSet | None = None) -> Result:
    """Fixed random triplets, drawn once (steps x batch of them), fitted for ``epochs``."""
    import keras
    from realtime.encoder import scale_crops
    from training.losses import seed_triplet_loss
    from training.model import build_triplet_model
    from training.seed_triplet import random_triplets
    t = config.training
    batch = t.people_per_batch * t.photos_per_person
    triplets = random_triplets(train.labels, t.steps_per_epoch * batch, seed=t.seed)
    encoder = new_encoder(config, normalize=False, batch_norm=False)
    model = build_triplet_model(encoder, config.model.input_size)
    loss, metrics = seed_triplet_loss(t.margin)
    model.compile(optimizer=keras.optimizers.Adam(schedule(config)), loss=loss, metrics=metrics)
    x = scale_crops(train.crops)
    inputs = [x[triplets[:, 0]], x[triplets[:, 1]], x[triplets[:, 2]]]
    dummy = np.zeros((len(triplets), 1), np.float32)
    h = model.fit(inputs, dummy, batch_size=batch, epochs=t.epochs, shuffle=True,
                  callbacks=validation_callbacks(encoder, validation),
                  verbose=2 if _quiet() else 1)
    normalized = any(l.__class__.__name__ == "UnitNormalization" for l in encoder.layers)
    return Result(encoder, normalized, {k: [float(v) for v in vals] for k, vals in h.history.items()})


def classifier_accuracy(classifier, train: FaceSet, val: FaceSet) -> float:
    """Softmax top-1 on val faces (people unknown to the head count as misses)."""
    from realtime.encoder import scale_crops
    model, people = classifier
    pred = np.array(people)[model.predict(scale_crops(val.crops), verbose=0).argmax(1)]
    return float((pred == val.labels).mean())


def train_distill(config: Config, train: FaceSet, validation: FaceSet | None = None) -> Result:
    from training.distill import train_distill as distill
    return distill(config, train, validation)


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


def validation_callbacks(encoder, validation: FaceSet | None) -> list:
    """The ROC AUC of ``validation``'s pairs after every epoch, logged as ``val_auc``."""
    if validation is None or not len(validation):
        return []
    from training.callbacks import PairAUC
    return [PairAUC(encoder, validation.crops, validation.labels)]
