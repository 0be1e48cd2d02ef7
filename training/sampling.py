"""P people x K photos batches, and the augmentations applied to them.

Online mining needs every batch to hold several photos of each of several people. A person
with a single photo has no positive, so it can only be a negative: batches draw their P
anchor people from those with two or more photos, and may add a few singletons as extra
negatives. Index drawing is plain seeded numpy (testable, reproducible); ``tf.data`` turns
the indices into augmented image batches.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import tensorflow as tf


def group_by_label(labels: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """(indices of every person with >= 2 photos, indices of the singletons)."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    uniq, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    groups = [order[s:s + c] for s, c in zip(starts, counts) if c >= 2]
    singletons = np.concatenate([order[s:s + c] for s, c in zip(starts, counts) if c == 1] or [np.zeros(0, int)])
    return groups, singletons.astype(np.int64)


def pk_batches(labels: np.ndarray, people: int, photos: int, singletons: int = 0,
               seed: int = 0) -> Iterator[np.ndarray]:
    """Endless index batches: ``people`` anchor people x ``photos`` photos each, then ``singletons``.

    A person with fewer than ``photos`` photos gets all of them, topped up by repeats (the
    augmentation makes the repeats differ). Raises ValueError when no person has two photos.
    """
    groups, lonely = group_by_label(labels)
    if not groups:
        raise ValueError("no person has two or more photos: triplets need anchors with a positive")
    rng = np.random.default_rng(seed)
    people = min(people, len(groups))
    singletons = min(singletons, len(lonely))
    while True:
        batch = []
        for g in rng.choice(len(groups), size=people, replace=False):
            idx = groups[g]
            if len(idx) >= photos:
                batch.append(rng.choice(idx, size=photos, replace=False))
            else:
                extra = rng.choice(idx, size=photos - len(idx), replace=True)
                batch.append(np.concatenate([rng.permutation(idx), extra]))
        if singletons:
            batch.append(rng.choice(lonely, size=singletons, replace=False))
        yield np.concatenate(batch).astype(np.int64)


# --- augmentation: small pure functions on a float32 [0, 1] batch (keras-io style) ---

def random_flip(images: tf.Tensor) -> tf.Tensor:
    """Mirror half the faces: a face and its mirror image are the same person."""
    flip = tf.random.uniform([tf.shape(images)[0], 1, 1, 1]) < 0.5
    return tf.where(flip, tf.image.flip_left_right(images), images)


def random_brightness_contrast(images: tf.Tensor, brightness: float = 0.15, contrast: float = 0.25) -> tf.Tensor:
    """Lighting changes between photos of one person should not move the embedding."""
    n = tf.shape(images)[0]
    delta = tf.random.uniform([n, 1, 1, 1], -brightness, brightness)
    factor = tf.random.uniform([n, 1, 1, 1], 1.0 - contrast, 1.0 + contrast)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((images - mean) * factor + mean + delta, 0.0, 1.0)


# Haar boxes wander by this share of their side and vary this much in size (config.yaml's
# training.augment_shift / augment_zoom defaults; aligned crops need less).
MAX_SHIFT = 0.08
MAX_ZOOM = 0.12


def random_shift_scale(images: tf.Tensor, max_shift: float = MAX_SHIFT, max_zoom: float = MAX_ZOOM) -> tf.Tensor:
    """Haar boxes wander by a few pixels and vary in size: crop a slightly moved, scaled box."""
    n = tf.shape(images)[0]
    size = tf.shape(images)[1:3]
    side = 1.0 + tf.random.uniform([n], -max_zoom, max_zoom)
    cy = 0.5 + tf.random.uniform([n], -max_shift, max_shift)
    cx = 0.5 + tf.random.uniform([n], -max_shift, max_shift)
    boxes = tf.stack([cy - side / 2, cx - side / 2, cy + side / 2, cx + side / 2], axis=1)
    return tf.image.crop_and_resize(images, boxes, tf.range(n), size, extrapolation_value=0.0)


def random_low_resolution(images: tf.Tensor, share: float = 0.5, smallest: float = 0.4) -> tf.Tensor:
    """A face far from the camera arrives with fewer pixels than the crop: shrink and re-enlarge
    ``share`` of the batch (one random scale in [smallest, 1] per batch)."""
    if share <= 0.0:
        return images
    size = tf.shape(images)[1:3]
    small = tf.maximum(tf.cast(tf.cast(size, tf.float32) * tf.random.uniform([], smallest, 1.0), tf.int32), 1)
    blurred = tf.image.resize(tf.image.resize(images, small, antialias=True), size)
    pick = tf.random.uniform([tf.shape(images)[0], 1, 1, 1]) < share
    return tf.where(pick, blurred, images)


@dataclass(frozen=True)
class Augmentation:
    """How far training crops are pushed (config.yaml's ``training.augment_*``)."""
    max_shift: float = MAX_SHIFT
    max_zoom: float = MAX_ZOOM
    low_resolution: float = 0.0      # share of each batch shrunk and re-enlarged


def augmentation(training) -> Augmentation | None:
    """The run's augmentation from its ``TrainingConfig``; None when ``augment`` is off."""
    if not training.augment:
        return None
    return Augmentation(training.augment_shift, training.augment_zoom, training.augment_low_resolution)


def augment(images: tf.Tensor, how: Augmentation = Augmentation()) -> tf.Tensor:
    moved = random_shift_scale(random_brightness_contrast(random_flip(images)), how.max_shift, how.max_zoom)
    return random_low_resolution(moved, how.low_resolution)


def pk_dataset(crops: np.ndarray, labels: np.ndarray, people: int, photos: int, singletons: int = 0,
               seed: int = 0, augmentation: Augmentation | None = Augmentation(),
               targets: np.ndarray | None = None) -> tf.data.Dataset:
    """``(images float32 [0, 1], labels int32)`` P x K batches, forever; ``crops`` are uint8 RGB.

    With ``targets`` (one row per crop; distillation: the teacher's embedding of it) the batches are
    ``(images, (labels, targets float32))``."""
    crops = np.asarray(crops)
    labels = np.asarray(labels, dtype=np.int32)
    targets = None if targets is None else np.asarray(targets, dtype=np.float32)
    batches = pk_batches(labels, people, photos, singletons, seed)

    def gen():
        for idx in batches:
            yield crops[idx], (labels[idx] if targets is None else (labels[idx], targets[idx]))

    size = crops.shape[1]
    y_spec = tf.TensorSpec((None,), tf.int32)
    if targets is not None:
        y_spec = (y_spec, tf.TensorSpec((None, targets.shape[1]), tf.float32))
    ds = tf.data.Dataset.from_generator(gen, output_signature=(tf.TensorSpec((None, size, size, 3), tf.uint8), y_spec))

    def prepare(images, y):
        images = tf.cast(images, tf.float32) / 255.0
        return (augment(images, augmentation) if augmentation else images), y

    return ds.map(prepare, num_parallel_calls=1).prefetch(2)
