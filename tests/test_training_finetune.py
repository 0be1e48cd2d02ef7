"""training.finetune and training.features: SFace split at a cut, its frozen part cached, the top trained."""
import os

import numpy as np
import pytest

pytest.importorskip("onnx")

from realtime.config import Config, apply_overrides  # noqa: E402
from training import sface  # noqa: E402
from training.data import FaceSet  # noqa: E402
from training.features import frozen_outputs  # noqa: E402
from training.finetune import (load_weights, split, train_sface, trained_layers,  # noqa: E402
                               with_head)


@pytest.fixture(scope="module")
def encoder():
    return sface.build_sface()


def crops(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def test_the_frozen_part_and_the_top_make_the_encoder(encoder):
    x = crops(2).astype(np.float32) / 255.0
    whole = np.asarray(encoder(x))
    np.testing.assert_allclose(np.asarray(with_head(encoder)(x)), whole, atol=1e-6)   # the head starts as identity
    for cut in ("last", "last-block"):
        trunk, top = split(encoder, sface.CUTS[cut])
        np.testing.assert_allclose(np.asarray(top(trunk(x))), whole, atol=1e-5)


def test_batchnorm_keeps_sfaces_statistics(encoder):
    _, top = split(encoder, sface.CUTS["last-block"])
    names = [layer.name for layer in trained_layers(top)]
    assert names == ["conv_14_dw_conv2d", "conv_14_dw_relu", "conv_14_conv2d", "conv_14_relu", "pre_fc1"]
    _, top = split(encoder, sface.CUTS["last"])
    assert [layer.name for layer in trained_layers(top)] == ["pre_fc1"]


def test_frozen_outputs_are_cached_per_crop_with_the_mirror_image(encoder, tmp_path):
    trunk, _ = split(encoder, sface.FEATURES_LAYER)
    faces = crops(3, seed=1)
    first = frozen_outputs(trunk, faces, tmp_path, progress=False)
    assert first.shape == (3, 2, 128) and first.dtype == np.float16
    x = faces.astype(np.float32) / 255.0
    np.testing.assert_allclose(first[:, 1], np.asarray(trunk(x[:, :, ::-1].copy())), rtol=2e-3, atol=2e-3)
    (cache,) = tmp_path.glob("features-*.npz")
    assert os.stat(cache).st_mode & 0o777 == 0o600

    class Refuses:     # the same trunk, but any computation fails: the second call must hit the cache
        output_shape = trunk.output_shape

        def get_weights(self):
            return trunk.get_weights()

        def predict(self, *args, **kwargs):
            raise AssertionError("computed again")
    again = frozen_outputs(Refuses(), faces[::-1], tmp_path, progress=False)
    np.testing.assert_array_equal(again, first[::-1])


def test_a_head_fine_tune_trains_only_the_head_and_its_weights_rebuild_the_encoder(tmp_path):
    config = apply_overrides(Config(), {
        "model.backbone": "sface", "model.input_size": 112, "training.fine_tune": "head",
        "training.epochs": 2, "training.steps_per_epoch": 3, "training.people_per_batch": 3,
        "training.photos_per_person": 2, "training.finish_epochs": 1, "training.learning_rate": 0.01,
        "training.final_learning_rate": 0.001, "training.margin": 1.5, "training.cache_dir": str(tmp_path)})
    labels = np.repeat(["a", "b", "c", "d"], 3)
    faces = FaceSet(crops(12, seed=2), labels, np.array([f"{i}.jpg" for i in range(12)]))
    result = train_sface(config, faces)
    assert sorted(result.weights) == ["head/0", "head/1"]
    assert not np.allclose(result.weights["head/0"], np.eye(128))          # it learned
    assert len(result.history["loss"]) == 2 and len(result.history["finish_loss"]) == 1
    np.savez(tmp_path / "w.npz", **result.weights)
    rebuilt = load_weights(sface.build_sface(), tmp_path / "w.npz")
    x = faces.crops[:4].astype(np.float32) / 255.0
    np.testing.assert_allclose(np.asarray(rebuilt(x)), np.asarray(result.encoder(x)), atol=1e-6)
    imported = apply_overrides(config, {"training.fine_tune": "none"})
    assert train_sface(imported, faces).weights == {}                       # as imported: nothing to store
