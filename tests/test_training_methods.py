"""training.methods: every registered method trains an encoder on celebrity5 through its real path, logs the
history keys training.plots reads, and a seed gives the same run twice."""
import os
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from realtime.config import apply_overrides, load_config  # noqa: E402
from training import methods  # noqa: E402
from training.train import load_training_data  # noqa: E402

DATA = os.environ.get("FACES_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="FACES_DATA not set: point it at the shared data folder")
EPOCHS = 2
# What each method logs per epoch (val_auc: the validation curve), by phase prefix.
TRIPLET = ("loss", "active", "pos_dist", "neg_dist", "val_auc")
KEYS = {
    "triplet": [f"warm_{k}" for k in ("loss", "accuracy", "val_auc")] + list(TRIPLET) + [f"finish_{k}" for k in TRIPLET],
    "classifier": ["loss", "accuracy", "val_auc"],
    "seed-triplet": ["loss", "active", "val_auc"],
    "distill": ["loss", "cosine", "relation", "triplet", "active", "val_auc"],
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def run(method: str, cache: Path, seed: int = 1, **overrides):
    config = load_config(None, {"training.data": str(Path(DATA) / "celebrity5"), "training.cache_dir": str(cache),
                                "training.method": method, "training.epochs": EPOCHS, "training.steps_per_epoch": 3,
                                "training.seed": seed})
    config = apply_overrides(config, overrides)
    train, val = load_training_data(config, set())
    keras.utils.set_random_seed(seed)
    return methods.train(config, train, validation=val), val


@needs_data
@pytest.mark.parametrize("method", sorted(KEYS))
def test_every_method_trains_an_encoder_and_logs_what_the_plots_read(method, cache):
    extra = {"training.warm_start_epochs": 1, "training.finish_epochs": 1} if method == "triplet" else {}
    result, val = run(method, cache, **extra)
    assert sorted(result.history) == sorted(KEYS[method])
    for key, values in result.history.items():
        epochs = 1 if key.startswith(("warm_", "finish_")) else EPOCHS
        assert len(values) == epochs and np.isfinite(values).all(), (key, values)
    embeddings = np.asarray(result.encoder(val.crops[:4].astype("float32") / 255.0, training=False))
    assert embeddings.shape == (4, 128) and np.isfinite(embeddings).all()
    if result.normalized:
        np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    assert result.normalized == (method != "seed-triplet")


@needs_data
def test_a_seed_gives_the_same_run_and_another_seed_another(cache):
    first, _ = run("triplet", cache, seed=4)
    again, _ = run("triplet", cache, seed=4)
    other, _ = run("triplet", cache, seed=5)
    assert first.history == again.history
    assert first.history["loss"] != other.history["loss"]
