"""Keras callbacks of the training run: a cheap validation curve per epoch.

The training loss cannot show overfitting (it only sees training people) and changes meaning
between phases (semi-hard vs batch-hard mining); the ROC AUC of held-out faces is one number
per epoch that means the same thing throughout, so ``history.png`` can plot it.
"""
from __future__ import annotations

import keras
import numpy as np

from realtime.encoder import scale_crops
from training import metrics

# A few hundred faces: all their pairs take well under a second to embed and score on a CPU.
MAX_FACES = 300


def pick_faces(labels: np.ndarray, max_faces: int = MAX_FACES, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_faces`` faces, whole people at a time, people with 2+ faces first
    (they make the same-person pairs), in a seeded order so every epoch scores the same pairs."""
    people, counts = np.unique(labels, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(people))
    order = order[np.argsort(counts[order] < 2, kind="stable")]
    chosen, total = [], 0
    for p in people[order]:
        rows = np.flatnonzero(labels == p)
        if total + len(rows) > max_faces:
            rows = rows[:max_faces - total]
        chosen.append(rows)
        total += len(rows)
        if total >= max_faces:
            break
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


class PairAUC(keras.callbacks.Callback):
    """After each epoch: ROC AUC over every pair of the given faces, logged as ``key``.

    ``encoder`` is named explicitly (not ``self.model``) so the same callback serves a warm-start
    classifier whose body is the encoder. The faces are embedded in inference mode, outside the
    training step, so the number costs one forward pass of a few hundred crops.
    """

    def __init__(self, encoder, crops: np.ndarray, labels: np.ndarray, key: str = "val_auc",
                 batch_size: int = 128):
        super().__init__()
        keep = pick_faces(np.asarray(labels))
        self.encoder, self.key, self.batch_size = encoder, key, batch_size
        self.images = scale_crops(np.asarray(crops)[keep])
        self.labels = np.asarray(labels)[keep]
        same = self.labels[:, None] == self.labels[None, :]
        self.scorable = bool(same[np.triu_indices(len(keep), k=1)].any()) and len(set(self.labels.tolist())) > 1

    def auc(self) -> float:
        parts = [np.asarray(self.encoder(self.images[i:i + self.batch_size], training=False))
                 for i in range(0, len(self.images), self.batch_size)]
        distances, same = metrics.all_pairs(np.concatenate(parts), self.labels)
        return metrics.roc_auc(distances, same)

    def on_epoch_end(self, epoch, logs=None):
        if self.scorable and logs is not None:
            logs[self.key] = self.auc()     # the History callback runs after this one and records it
