"""training.distill: the centred teacher (the terms are tested in test_training_losses, the
step in test_training_trainers)."""
import numpy as np

from training.distill import centred_targets


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


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
