"""The face encoder: a small convolutional backbone ending in an L2-normalised embedding.

Backbones are plain 3x3 convolutions, then dense layers, with batch normalisation added so
that training is stable at the learning rates a 2-core machine can afford: the seed's four
stride-2 layers, the six-convolution ``deep`` one, or ``deep-wide`` (the shipped encoder's).
Everything is stock Keras (no Lambda layers), so ``encoder.keras`` loads anywhere and converts
to TFLite without custom objects. Input: ``(size, size, 3)`` float32 RGB in [0, 1].
:func:`new_encoder` is the one a training run starts from: fresh, or the ``--init`` model's.
"""
from __future__ import annotations

import logging

import keras
from keras import layers

from realtime.config import Config, resolve_path
from realtime.errors import UserError

log = logging.getLogger(__name__)

# (filters, stride) per convolution. seed: the seed's four stride-2 convolutions. deep: thinner
# early layers (where each multiply costs the most) paid for with stride-1 convolutions at
# 15x15 and 8x8, six convolutions instead of four, for about 1.4x the multiplies. deep-wide: the
# deep layout with 1.5x the filters (about 2.2x its multiplies): a distilled student fits its
# teacher closer (the shipped encoder, training/EXPERIMENTS.md).
CONVS = {"seed": ((64, 2), (128, 2), (64, 2), (64, 2)),
         "wide": ((64, 2), (128, 2), (128, 2), (128, 2)),
         "deep": ((32, 2), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2)),
         "deep-wide": ((48, 2), (96, 2), (96, 1), (192, 2), (192, 1), (384, 2))}
DENSE = {"seed": 256, "wide": 512, "deep": 256, "deep-wide": 384}
FEATURES_LAYER = "features"      # the pre-normalisation embedding (the classifier's penultimate layer)
EMBEDDING_LAYER = "embedding"
# Keras' default 0.99 leaves the inference statistics mostly at their initial values after a
# short run (1 - 0.99**40 = 33% after 40 steps), so a quick run would be evaluated on wrong ones.
BN_MOMENTUM = 0.9


def build_encoder(input_size: int, embedding_size: int, backbone: str = "seed", batch_norm: bool = True,
                  normalize: bool = True, dropout: float = 0.0, name: str = "encoder") -> keras.Model:
    """Image batch -> embedding batch; unit length when ``normalize`` (distances then lie in [0, 2])."""
    inputs = keras.Input((input_size, input_size, 3), dtype="float32", name="face")
    x = inputs
    for i, (filters, stride) in enumerate(CONVS[backbone]):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=not batch_norm, name=f"conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(DENSE[backbone], use_bias=not batch_norm, name="dense")(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn_dense")(x)
    x = layers.ReLU(name="relu_dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(embedding_size, name=FEATURES_LAYER)(x)
    if normalize:
        x = layers.UnitNormalization(name=EMBEDDING_LAYER)(x)
    return keras.Model(inputs, x, name=name)


def build_classifier(encoder: keras.Model, num_people: int) -> keras.Model:
    """A softmax head on the encoder's penultimate (pre-normalisation) layer; shares its weights."""
    features = encoder.get_layer(FEATURES_LAYER).output
    logits = layers.Dense(num_people, activation="softmax", name="person")(features)
    return keras.Model(encoder.input, logits, name="classifier")


def new_encoder(config: Config, normalize: bool = True, batch_norm: bool = True) -> keras.Model:
    """A fresh encoder as ``config.model`` describes it, or the one in ``training.init`` to fine-tune."""
    if config.training.init:
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
                         batch_norm=batch_norm, normalize=normalize, dropout=config.model.dropout)


FLIP_AVERAGE_NAME = "flip_average"


def with_flip_average(encoder: keras.Model) -> keras.Model:
    """The encoder applied to each face and to its mirror image, the two embeddings averaged.

    A face and its mirror are the same person, so the average is a steadier embedding (test-time
    augmentation in the graph: one interpreter call still encodes a batch). Twice the multiplies.
    """
    if encoder.name == FLIP_AVERAGE_NAME:
        return encoder
    faces = keras.Input(encoder.input_shape[1:], dtype="float32", name="face")
    both = layers.Concatenate(axis=0, name="with_mirrors")([faces, keras.ops.flip(faces, axis=2)])
    # The same layers without the training's compile state, so no optimizer is saved inside.
    inner = keras.Model(encoder.input, encoder.output, name=encoder.name)
    embedded, mirrored = keras.ops.split(inner(both), 2, axis=0)
    outputs = layers.UnitNormalization(name=EMBEDDING_LAYER)(layers.Add(name="average")([embedded, mirrored]))
    return keras.Model(faces, outputs, name=FLIP_AVERAGE_NAME)
