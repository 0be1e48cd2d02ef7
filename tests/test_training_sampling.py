"""training.sampling: P x K batches (who may be an anchor, who only a negative) and the augmentations."""
from collections import Counter

import numpy as np
import pytest

from training.sampling import augment, group_by_label, pk_batches, pk_dataset, random_low_resolution, random_shift_scale

LABELS = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["solo1", "solo2", "solo3"])


def test_pk_batches_shape_and_singletons_never_anchor_people():
    gen = pk_batches(LABELS, people=2, photos=4, singletons=2, seed=3)
    for _ in range(50):
        idx = next(gen)
        assert len(idx) == 2 * 4 + 2
        people = LABELS[idx[:8]]
        counts = Counter(people.tolist())
        assert len(counts) == 2 and all(c == 4 for c in counts.values())
        assert not any(p.startswith("solo") for p in people)
        assert all(p.startswith("solo") for p in LABELS[idx[8:]])


def test_pk_batches_seeded():
    def batches(seed):
        gen = pk_batches(LABELS, 3, 2, seed=seed)
        return [next(gen).tolist() for _ in range(20)]
    assert batches(7) == batches(7)              # the same seed: the same batches, one after another
    assert batches(7) != batches(8)              # (and the seed matters)


def test_pk_batches_needs_a_person_with_two_photos():
    with pytest.raises(ValueError):
        next(pk_batches(np.array(["x", "y"]), 2, 2))


def test_group_by_label():
    groups, lonely = group_by_label(LABELS)
    assert sorted(len(g) for g in groups) == [2, 3, 5]
    assert sorted(LABELS[lonely].tolist()) == ["solo1", "solo2", "solo3"]


def test_augment_keeps_shape_and_range():
    x = np.random.default_rng(0).uniform(size=(6, 20, 20, 3)).astype(np.float32)
    y = np.asarray(augment(x))
    assert y.shape == x.shape and y.min() >= 0.0 and y.max() <= 1.0


def test_shift_scale_limits_are_obeyed():
    """Zero limits leave an aligned crop where it is; larger ones move it (config: augment_shift/zoom)."""
    x = np.random.default_rng(1).uniform(size=(8, 24, 24, 3)).astype(np.float32)
    still = np.asarray(random_shift_scale(x, max_shift=0.0, max_zoom=0.0))
    np.testing.assert_allclose(still, x, atol=1e-5)
    moved = np.asarray(random_shift_scale(x, max_shift=0.3, max_zoom=0.3))
    assert np.abs(moved - x).mean() > 0.05


def test_low_resolution_blurs_only_when_asked():
    x = np.random.default_rng(2).uniform(size=(16, 24, 24, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(random_low_resolution(x, share=0.0)), x)
    blurred = np.asarray(random_low_resolution(x, share=1.0, smallest=0.3))
    # Shrinking noise and enlarging it again averages neighbours: less variance, same mean.
    assert blurred.shape == x.shape and blurred.std() < x.std()
    assert abs(blurred.mean() - x.mean()) < 0.02


def test_pk_dataset_gives_each_face_its_label_and_its_own_target_row():
    """Distillation's batches: ``(images, (labels, teacher rows))``, every row the one of its own face."""
    ids = np.repeat(np.arange(4), 3).astype(np.int32)
    crops = np.repeat(np.arange(12, dtype=np.uint8)[:, None, None, None], 8, axis=1).repeat(8, 2).repeat(3, 3)
    targets = np.arange(12, dtype=np.float32)[:, None] * np.ones((1, 5), np.float32)    # row i says face i
    plain = pk_dataset(crops, ids, 2, 3, seed=1, augmentation=None)
    with_targets = pk_dataset(crops, ids, 2, 3, seed=1, augmentation=None, targets=targets)
    for (images, labels), (same_images, (same_labels, rows)) in zip(plain.take(5), with_targets.take(5)):
        faces = np.round(images.numpy()[:, 0, 0, 0] * 255).astype(int)     # each crop's pixels name its face
        np.testing.assert_array_equal(same_images.numpy(), images.numpy())   # the targets change no batch
        np.testing.assert_array_equal(same_labels.numpy(), labels.numpy())
        assert labels.dtype == np.int32 and labels.numpy().tolist() == ids[faces].tolist()
        np.testing.assert_array_equal(rows.numpy(), targets[faces])
