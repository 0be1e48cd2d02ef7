"""Fine-tuning SFace with the triplet loss: its frozen layers cached once, the layers above them trained.

``training.fine_tune`` says where SFace stops being frozen (``training.sface.CUTS``): a new
128 x 128 projection on its embedding (``head``), its final dense layer (``last``) or its last block
too (``last-block``); ``none`` keeps it as imported. Below the cut every crop's output is the
same at every step, so it is computed once per crop and its mirror image and cached
(``training.features``); a step then runs only the layers above it, and an epoch takes seconds
to a minute on two cores instead of an hour. BatchNorm layers keep SFace's statistics (inference
mode): a few hundred small batches would only move them away from the ones its weights expect.

The top trains in a ``training.trainers.TripletTrainer``, in the phases the small students'
triplet method has (``training.fitting.triplet_phases``): semi-hard mining for ``training.epochs``,
then ``finish_epochs`` of ``finish_mining`` (batch-hard) at the finishing learning rates.
"""
from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from realtime.config import Config, resolve_path
from realtime.errors import UserError
from training import sface
from training.callbacks import PairAUC
from training.data import FaceSet
from training.export import WEIGHTS_NAME      # the trained layers of an SFace encoder; the rest is the ONNX file
from training.features import frozen_outputs
from training.fitting import Result, fit, jit_compile, label_ids, prefixed, triplet_phases
from training.sampling import pk_batches
from training.trainers import TripletTrainer

log = logging.getLogger(__name__)

VALIDATION_FACES = 1500


def with_head(encoder):
    """``encoder`` with a 128 x 128 projection (identity at first) between SFace's output and the
    L2 normalisation: at the start the embedding is SFace's own."""
    from keras import layers
    if any(layer.name == sface.HEAD_LAYER for layer in encoder.layers):
        return encoder
    features = encoder.get_layer(sface.FEATURES_LAYER).output
    size = int(features.shape[-1])
    head = layers.Dense(size, kernel_initializer="identity", bias_initializer="zeros", name=sface.HEAD_LAYER)
    outputs = layers.UnitNormalization(name=sface.EMBEDDING_LAYER)(head(features))
    return keras.Model(encoder.input, outputs, name=encoder.name)


def split(encoder, cut: str):
    """(trunk: input -> ``cut``'s output, top: that output -> embedding), sharing ``encoder``'s layers."""
    names = [layer.name for layer in encoder.layers]
    trunk = keras.Model(encoder.input, encoder.get_layer(cut).output, name="frozen")
    x = inputs = keras.Input(tuple(encoder.get_layer(cut).output.shape[1:]), name="frozen_output")
    for layer in encoder.layers[names.index(cut) + 1:]:
        x = layer(x)
    return trunk, keras.Model(inputs, x, name="trained")


def trained_layers(top) -> list:
    """The layers of ``top`` that learn: all with weights but BatchNorm (kept in inference mode)."""
    from keras import layers
    out = []
    for layer in top.layers:
        layer.trainable = bool(layer.weights) and not isinstance(layer, layers.BatchNormalization)
        if layer.trainable:
            out.append(layer)
    return out


def layer_weights(layers_) -> dict[str, np.ndarray]:
    return {f"{layer.name}/{i}": np.asarray(w) for layer in layers_ for i, w in enumerate(layer.get_weights())}


def load_weights(encoder, path: Path):
    """``encoder`` (SFace as imported) with the trained layers saved in ``path``, a head added if saved."""
    try:
        with np.load(path, allow_pickle=False) as data:
            saved = {k: data[k] for k in data.files}
    except Exception as err:  # noqa: BLE001 - any failure: the file is not what export wrote
        raise UserError(f"{path} cannot be read ({type(err).__name__}): re-export the model") from None
    if any(k.startswith(sface.HEAD_LAYER + "/") for k in saved):
        encoder = with_head(encoder)
    for name in sorted({k.rsplit("/", 1)[0] for k in saved}):
        try:
            layer = encoder.get_layer(name)
            layer.set_weights([saved[f"{name}/{i}"] for i in range(len(layer.weights))])
        except (ValueError, KeyError) as err:
            raise UserError(f"{path}: layer {name} does not fit SFace ({err}): re-export the model") from None
    return encoder


def load_sface_encoder(model_dir: Path):
    """An exported SFace encoder as a Keras model: the ONNX file plus the folder's trained layers."""
    encoder = sface.build_sface()
    path = Path(model_dir) / WEIGHTS_NAME
    return load_weights(encoder, path) if path.is_file() else encoder


def sface_encoder(config: Config):
    """SFace as imported, or the ``training.init`` model's (the ONNX file plus its trained layers)."""
    encoder = sface.build_sface()
    if config.training.init:
        path = resolve_path(config.training.init) / WEIGHTS_NAME
        if path.is_file():
            encoder = load_weights(encoder, path)
            log.info("fine-tuning SFace with the trained layers of %s", path)
        else:
            log.info("fine-tuning SFace as imported (%s has no %s)", config.training.init, WEIGHTS_NAME)
    return encoder


def feature_batches(features: np.ndarray, ids: np.ndarray, config: Config, seed: int):
    """P x K (+ singletons) batches of cached features, each face as itself or its mirror at random."""
    t = config.training
    singletons = t.singletons_per_batch or (t.photos_per_person if (np.bincount(ids) == 1).any() else 0)
    batches = pk_batches(ids, t.people_per_batch, t.photos_per_person, singletons, seed)
    rng = np.random.default_rng(seed + 7)

    def gen():
        for idx in batches:
            views = rng.integers(0, features.shape[1], len(idx))
            yield features[idx, views].astype(np.float32), ids[idx]

    spec = (tf.TensorSpec((None,) + features.shape[2:], tf.float32), tf.TensorSpec((None,), tf.int32))
    return tf.data.Dataset.from_generator(gen, output_signature=spec).prefetch(2)


def train_sface(config: Config, train: FaceSet, validation: FaceSet | None = None) -> Result:
    """The triplet method for ``model.backbone: sface``: the fine-tune ``training.fine_tune`` names."""
    t = config.training
    encoder = sface_encoder(config)
    if t.fine_tune == "none":
        log.info("fine_tune none: SFace as imported; this run measures and calibrates it")
        return Result(encoder, True, {}, report={"fine_tune": "none", "mining": None, "finish_epochs": 0,
                                                 "finish_mining": None}, weights=_saved(encoder))
    if t.fine_tune == "head":
        encoder = with_head(encoder)
    trunk, top = split(encoder, sface.CUTS[t.fine_tune])
    learning = trained_layers(top)
    log.info("fine_tune %s: training %s (%d weights) on SFace's frozen %s output, cached per crop",
             t.fine_tune, ", ".join(l.name for l in learning), sum(int(np.prod(w.shape)) for l in learning
                                                                  for w in l.trainable_weights),
             sface.CUTS[t.fine_tune])
    cache = resolve_path(t.cache_dir)
    features = frozen_outputs(trunk, train.crops, cache)
    _, ids = label_ids(train.labels)
    callbacks = []
    if validation is not None and len(validation):
        # More faces than a student's curve uses: SFace separates the pairs of 300 faces of people with
        # several photos almost perfectly (AUC 0.9999), so the one-photo strangers' pairs are what can move.
        # PairAUC picks the faces; only those go through the frozen trunk (cached per crop).
        callbacks = [PairAUC(top, validation.crops, validation.labels, max_faces=VALIDATION_FACES,
                             prepare=lambda crops: frozen_outputs(trunk, crops, cache)[:, 0].astype(np.float32))]
    history = {}
    for number, phase in enumerate(triplet_phases(config)):
        log.info("%s%d epochs of %s mining", phase.prefix.replace("_", ": "), phase.epochs, phase.mining)
        trainer = TripletTrainer(top, t.margin, phase.mining)
        trainer.compile(optimizer=keras.optimizers.Adam(phase.learning_rate), jit_compile=jit_compile())
        history.update(prefixed(fit(trainer, feature_batches(features, ids, config, t.seed + number),
                                    epochs=phase.epochs, steps_per_epoch=t.steps_per_epoch, callbacks=callbacks),
                                phase.prefix))
    return Result(encoder, True, history, weights=_saved(encoder), report={
        "fine_tune": t.fine_tune, "mining": t.mining, "finish_epochs": t.finish_epochs,
        "finish_mining": t.finish_mining if t.finish_epochs else None,
        "trained_layers": [l.name for l in learning]})


def _saved(encoder) -> dict[str, np.ndarray]:
    """What ``encoder.weights.npz`` keeps: every layer that differs from the ONNX file (none when imported)."""
    reference = sface.imported_weights()
    changed = []
    for layer in encoder.layers:
        ref, ours = reference.get(layer.name), layer.get_weights()
        if ours and (ref is None or any(not np.array_equal(a, b) for a, b in zip(ours, ref))):
            changed.append(layer)
    return layer_weights(changed)
