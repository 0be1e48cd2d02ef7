"""training.distill: the distillation terms, the packed targets and the centred teacher."""
import numpy as np
import pytest
import tensorflow as tf

from training.distill import centred_targets, distillation_terms, keras_loss_and_metrics, split_targets


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_student_equal_to_its_teacher_has_no_distillation_loss():
    teacher = unit(np.random.default_rng(0).normal(size=(8, 16))).astype(np.float32)
    cosine, relation = distillation_terms(tf.constant(teacher), tf.constant(3.0 * teacher))  # scale does not matter
    assert float(cosine) == pytest.approx(0.0, abs=1e-6) and float(relation) == pytest.approx(0.0, abs=1e-6)
    other = unit(np.random.default_rng(1).normal(size=(8, 16))).astype(np.float32)
    cosine, relation = distillation_terms(tf.constant(other), tf.constant(teacher))
    assert float(cosine) > 0.5 and float(relation) > 0.01


def test_targets_pack_the_label_and_the_teacher():
    y = tf.constant([[3.0, 0.1, 0.2], [7.0, 0.3, 0.4]])
    labels, teacher = split_targets(y)
    assert labels.numpy().tolist() == [3, 7]
    np.testing.assert_allclose(teacher.numpy(), [[0.1, 0.2], [0.3, 0.4]])


def test_the_loss_adds_the_triplet_term_only_when_weighted():
    rng = np.random.default_rng(2)
    emb = unit(rng.normal(size=(8, 16))).astype(np.float32)
    y = np.c_[np.repeat(np.arange(4), 2).astype(np.float32), unit(rng.normal(size=(8, 16)))].astype(np.float32)
    plain, metrics = keras_loss_and_metrics(1.0, 1.0, 0.0, 0.2)
    with_triplet, metrics3 = keras_loss_and_metrics(1.0, 1.0, 1.0, 0.2)
    assert [m.__name__ for m in metrics] == ["cosine", "relation"]
    assert [m.__name__ for m in metrics3] == ["cosine", "relation", "triplet", "active"]
    a, b = float(plain(tf.constant(y), tf.constant(emb))), float(with_triplet(tf.constant(y), tf.constant(emb)))
    assert b > a
    assert b - a == pytest.approx(float(metrics3[2](None, None)), rel=1e-5)


def test_centred_targets_spread_a_narrow_cone_over_the_sphere_keeping_the_order():
    rng = np.random.default_rng(3)
    common = np.ones(16)
    people = rng.normal(size=(50, 16))
    raw = 6.0 * common + np.repeat(people, 2, 0) + 0.3 * rng.normal(size=(100, 16))   # like dlib: one big shared part
    before, after = unit(raw), centred_targets(raw)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, rtol=1e-5)
    stranger_cos = lambda e: float((e[0::2][:-1] * e[2::2]).sum(1).mean())
    same_cos = lambda e: float((e[0::2] * e[1::2]).sum(1).mean())
    assert stranger_cos(before) > 0.8 and abs(stranger_cos(after)) < 0.2
    assert same_cos(after) > stranger_cos(after) + 0.5
