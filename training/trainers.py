"""The methods' Keras models: each computes its loss and the metrics that go with it in ``train_step``.

keras-io's metric-learning pattern: a ``keras.Model`` around the network being trained (a student
encoder, or the layers of SFace above a frozen cut) whose ``train_step`` computes the loss from a
batch and updates one ``keras.metrics.Mean`` tracker per logged quantity. Mining runs once a step
and every metric reads what that step mined; the labels and a teacher's embeddings arrive as
what they are, ``(images, labels)`` or ``(images, (labels, teacher))``. The trackers' names are the
history keys ``training.plots`` reads (``loss``, ``active``, ``pos_dist``, ``neg_dist``...).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from training.losses import (distillation_terms, mean_negative_distance, mean_positive_distance, seed_triplet_terms,
                             triplet_loss_and_active)


class Trainer(keras.Model):
    """Trains ``network`` on the loss :meth:`step` returns first (as ``loss``); logs the rest beside it."""

    def __init__(self, network, names: tuple[str, ...], **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", *names)}

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def step(self, x, y) -> dict[str, tf.Tensor]:
        """``{"loss": the loss to minimise, other tracked name: its value}`` of one batch, in training mode."""
        raise NotImplementedError

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            values = self.step(x, y)
        weights = self.trainable_weights
        # Under tf.distribute each replica's gradient is of its own batch's loss and the optimizer sums
        # them, as the compiled losses these steps replace did (Adam barely notices the scale).
        self.optimizer.apply_gradients(zip(tape.gradient(values["loss"], weights), weights))
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    @property
    def metrics(self):
        return list(self.trackers.values())


class TripletTrainer(Trainer):
    """Online triplet loss (``mining``: semi-hard or batch-hard) on ``(images, labels)`` P x K batches."""

    def __init__(self, network, margin: float, mining: str, **kwargs):
        super().__init__(network, ("active", "pos_dist", "neg_dist"), **kwargs)
        self.margin, self.mining = margin, mining

    def step(self, x, labels):
        embeddings = self.network(x, training=True)
        loss, active = triplet_loss_and_active(labels, embeddings, self.margin, self.mining)
        return {"loss": loss, "active": active, "pos_dist": mean_positive_distance(labels, embeddings),
                "neg_dist": mean_negative_distance(labels, embeddings)}


class DistillTrainer(Trainer):
    """``(images, (labels, teacher embeddings))`` batches: the weighted sum of the two distillation terms
    and, when ``triplet_weight``, the triplet loss on the labels (``training.distill``)."""

    def __init__(self, network, distill_weight: float, relation_weight: float, triplet_weight: float,
                 margin: float, mining: str = "semi-hard", **kwargs):
        super().__init__(network, ("cosine", "relation") + (("triplet", "active") if triplet_weight else ()), **kwargs)
        self.term_weights = (distill_weight, relation_weight, triplet_weight)
        self.margin, self.mining = margin, mining

    def step(self, x, y):
        labels, teacher = y
        distill_weight, relation_weight, triplet_weight = self.term_weights
        embeddings = self.network(x, training=True)
        cosine, relation = distillation_terms(embeddings, teacher)
        values = {"loss": distill_weight * cosine + relation_weight * relation, "cosine": cosine, "relation": relation}
        if triplet_weight:
            values["triplet"], values["active"] = triplet_loss_and_active(labels, embeddings, self.margin, self.mining)
            values["loss"] = values["loss"] + triplet_weight * values["triplet"]
        return values


class SeedTripletTrainer(Trainer):
    """The seed's baseline: ``(anchors, positives, negatives)`` image batches, the summed hinge."""

    def __init__(self, network, margin: float, **kwargs):
        super().__init__(network, ("active",), **kwargs)
        self.margin = margin

    def call(self, inputs, training=False):
        return tf.concat([self.network(x, training=training) for x in inputs], axis=1)

    def step(self, x, y):
        loss, active = seed_triplet_terms(*(self.network(images, training=True) for images in x), self.margin)
        return {"loss": loss, "active": active}
