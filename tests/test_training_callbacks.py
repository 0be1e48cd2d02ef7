"""training.callbacks: the per-epoch validation AUC behind history.png's validation curve."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
from training.callbacks import PairAUC, pick_faces  # noqa: E402
from training.metrics import all_pairs, roc_auc  # noqa: E402


def test_pick_faces_takes_whole_people_with_pairs_first_and_stops_at_the_cap():
    labels = np.array(["solo1", "a", "a", "solo2", "b", "b", "b", "c", "c"])
    picked = pick_faces(labels, max_faces=5, seed=0)
    assert len(picked) == 5 and list(picked) == sorted(picked)
    chosen = labels[picked]
    assert "solo1" not in chosen and "solo2" not in chosen      # people with two or more faces come first
    assert pick_faces(labels, max_faces=100).tolist() == list(range(9))
    assert pick_faces(labels, seed=3).tolist() == pick_faces(labels, seed=3).tolist()   # same faces every epoch


def test_pair_auc_logs_the_roc_auc_of_the_encoders_embeddings():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["a", "b", "c"]), 4)
    crops = rng.integers(0, 256, (12, 6, 6, 3), dtype=np.uint8)
    inputs = keras.Input((6, 6, 3))
    encoder = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
    callback = PairAUC(encoder, crops, labels)
    logs = {"loss": 1.0}
    callback.on_epoch_end(0, logs)
    embeddings = np.asarray(encoder(crops.astype(np.float32) / 255.0))
    assert logs["val_auc"] == pytest.approx(roc_auc(*all_pairs(embeddings, labels)), abs=1e-5)
    assert 0.0 <= logs["val_auc"] <= 1.0 and logs["loss"] == 1.0


def test_pair_auc_logs_nothing_without_same_person_pairs():
    inputs = keras.Input((6, 6, 3))
    encoder = keras.Model(inputs, keras.layers.Flatten()(inputs))
    callback = PairAUC(encoder, np.zeros((3, 6, 6, 3), np.uint8), np.array(["a", "b", "c"]))
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs == {}
