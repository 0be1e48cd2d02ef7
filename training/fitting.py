"""What every training method shares: how a model is fitted, at which learning rates, what it returns.

The methods (``training.methods``, ``training.distill``, ``training.finetune``) build a
``training.trainers`` model and hand it to :func:`fit`: Keras' ``fit``, made to run under
``MultiWorkerMirroredStrategy`` too, with steps XLA-compiled where that helps (:func:`jit_compile`)
and one progress line an epoch in a log. Pure bookkeeping around Keras, no face data.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from realtime.config import Config
from training.callbacks import PairAUC
from training.data import FaceSet

# Compile training steps with XLA: Keras' "auto" leaves it off on CPUs (what it gains: EXPERIMENTS.md).
XLA = True


@dataclass
class Result:
    """What a method returns to ``python -m training``."""
    encoder: object               # keras.Model: crops in [0, 1] -> embeddings
    normalized: bool
    history: dict                 # Keras history: {key: one value per epoch}; training.plots reads it
    classifier: object | None = None
    report: dict = field(default_factory=dict)    # method-specific settings for report.json
    # backbone sface: the layers that differ from the vendored ONNX (encoder.weights.npz), instead of encoder.keras
    weights: dict | None = None


def label_ids(labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(the people, sorted; each face's index among them as int32)."""
    people = sorted(set(labels.tolist()))
    return people, np.searchsorted(np.array(people), labels).astype(np.int32)


def schedule(config: Config, epochs: int | None = None, start: float | None = None, end: float | None = None):
    """Cosine decay from ``start`` to ``end`` over ``epochs`` (defaults: the run's learning rates and epochs)."""
    t = config.training
    start, end = start or t.learning_rate, end or t.final_learning_rate
    return keras.optimizers.schedules.CosineDecay(
        start, decay_steps=(epochs or t.epochs) * t.steps_per_epoch, alpha=min(1.0, end / start))


class Phase(NamedTuple):
    prefix: str          # of its history keys: "" (the main phase) or "finish_"
    mining: str
    epochs: int
    learning_rate: object


def triplet_phases(config: Config) -> list[Phase]:
    """The triplet loss's phases: ``training.epochs`` of ``mining``, then ``finish_epochs`` of
    ``finish_mining`` (batch-hard) from a fresh schedule at the finishing learning rates.

    From a trained encoder, batch-hard mining pushes apart the hardest pairs that semi-hard mining
    leaves alone; from scratch it collapses."""
    t = config.training
    phases = [Phase("", t.mining, t.epochs, schedule(config))]
    if t.finish_epochs:
        phases.append(Phase("finish_", t.finish_mining, t.finish_epochs,
                            schedule(config, t.finish_epochs, t.finish_learning_rate, t.finish_final_learning_rate)))
    return phases


def jit_compile() -> bool:
    """XLA on one device only: under tf.distribute it compiles every replica's step for the first device."""
    return XLA and not tf.distribute.has_strategy()


def verbosity() -> int:
    """Keras' progress bar on a terminal, one line an epoch in a log."""
    return 1 if sys.stderr.isatty() else 2


def fit(model, data, **kwargs) -> dict[str, list[float]]:
    """``model.fit(data, **kwargs)``'s history as plain floats, also under ``MultiWorkerMirroredStrategy``.

    Keras 3 (3.15) cannot fit there by itself (keras-team/keras#20585): it builds a model made in a
    strategy scope from a sample batch that it first reduces across the workers, which fails for
    ``(x, y)`` batches, and it averages each step's scalar metrics over an axis they lack. So the
    model is built here from the dataset's spec and takes the strategy from the surrounding scope,
    and each step's metrics are not averaged over the workers (the gradients are, and the epoch's
    metrics are read from metric variables summed over all of them). ``data``: a ``tf.data`` dataset
    there; elsewhere anything ``model.fit`` takes as ``x``.
    """
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy) \
            and hasattr(data, "element_spec"):
        from keras.src.backend.tensorflow import trainer
        trainer._collective_all_reduce_multi_worker = lambda strategy: False
        model._symbolic_build(data_batch=data.element_spec)
        model._distribute_strategy = None
    # A tf.data dataset comes shuffled by its own pipeline (Keras' shuffle would only warn).
    defaults = {"verbose": verbosity(), "shuffle": not isinstance(data, tf.data.Dataset)}
    history = model.fit(data, **{**defaults, **kwargs})
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def prefixed(history: dict, prefix: str) -> dict:
    """A phase's history keys as ``training.plots`` tells the phases apart (``warm_``, ``finish_``)."""
    return {f"{prefix}{k}": v for k, v in history.items()}


def validation_callbacks(encoder, validation: FaceSet | None) -> list:
    """The ROC AUC of ``validation``'s pairs after every epoch, logged as ``val_auc``."""
    if validation is None or not len(validation):
        return []
    return [PairAUC(encoder, validation.crops, validation.labels)]
