"""The TFLite file the live loop runs gives the Keras model's embeddings, for a batch of any size."""
import json

import numpy as np
import pytest

from realtime.config import Config
from training.export import export, metadata
from training.model import build_encoder


@pytest.fixture(scope="module", params=[("seed", 0.0), ("deep-wide", 0.3)], ids=["seed", "deep-wide-dropout"])
def exported(tmp_path_factory, request):
    out = tmp_path_factory.mktemp("model")
    backbone, dropout = request.param
    encoder = build_encoder(60, 128, backbone, dropout=dropout)
    # Move batch-norm statistics away from their defaults so inference really uses them.
    x = np.random.default_rng(0).uniform(size=(16, 60, 60, 3)).astype(np.float32)
    encoder(x, training=True)
    meta = metadata(Config(), "triplet", True, 0.9, {"faces": 16}, {"top1": 0.5, "roc_auc": 0.6})
    export(encoder, out, meta)
    return encoder, out


@pytest.mark.parametrize("batch", [1, 3])
def test_tflite_matches_keras(exported, batch):
    from ai_edge_litert.interpreter import Interpreter
    encoder, out = exported
    x = np.random.default_rng(batch).uniform(size=(batch, 60, 60, 3)).astype(np.float32)
    interpreter = Interpreter(model_path=str(out / "encoder.tflite"))
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], [batch, 60, 60, 3])
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    keras_out = np.asarray(encoder.predict(x, verbose=0))
    assert lite.shape == (batch, 128)
    np.testing.assert_allclose(lite, keras_out, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(lite, axis=1), 1.0, atol=1e-4)


def test_dropout_is_training_only(exported):
    """Dropout must vanish at inference, or the same face would get a different embedding each frame."""
    encoder, _ = exported
    x = np.random.default_rng(7).uniform(size=(4, 60, 60, 3)).astype(np.float32)
    first = np.asarray(encoder(x, training=False))
    np.testing.assert_array_equal(first, np.asarray(encoder(x, training=False)))
    # In training mode batch norm is deterministic too, so two calls differ only by dropout's masks.
    twice = [np.asarray(encoder(x, training=True)) for _ in range(2)]
    has_dropout = any(layer.name == "dropout" for layer in encoder.layers)
    assert np.allclose(*twice, atol=1e-6) != has_dropout


def test_encoder_json_schema(exported):
    _, out = exported
    meta = json.loads((out / "encoder.json").read_text())
    assert meta["format"] == 1 and meta["input_size"] == 60 and meta["embedding_size"] == 128
    assert meta["normalized"] is True and meta["distance"] == "euclidean"
    assert meta["threshold"] == 0.9 and meta["target_far"] == 0.01
    pre = meta["preprocessing"]
    assert {k: pre[k] for k in ("detector", "cascade", "color", "scale", "crop")} == {
        "detector": "haar", "cascade": "haarcascade_frontalface_default.xml", "color": "RGB", "scale": "1/255",
        "crop": "largest face"}
    # The alignment the crops were made with, as the runtime checks it against its config.
    from realtime.config import load_config
    from realtime.crops import check_preprocessing
    assert pre["alignment"]["method"] in ("yunet", "none")
    check_preprocessing(meta, load_config())
    assert meta["metrics"] == {"top1": 0.5, "roc_auc": 0.6}
    assert (out / "encoder.keras").is_file()


def test_flip_average_is_in_the_exported_graph(tmp_path):
    from realtime.encoder import Encoder
    from training.model import with_flip_average
    encoder = build_encoder(60, 128, "seed")
    wrapped = with_flip_average(encoder)
    assert with_flip_average(wrapped) is wrapped                      # never wrapped twice (fine-tuning a wrapper)
    export(wrapped, tmp_path, metadata(Config(), "distill", True, 0.9, {}, {}))
    crops = np.random.default_rng(3).integers(0, 256, (3, 60, 60, 3), dtype=np.uint8)
    x = crops.astype(np.float32) / 255.0
    both = np.asarray(encoder(x)) + np.asarray(encoder(x[:, :, ::-1].copy()))
    expected = both / np.linalg.norm(both, axis=1, keepdims=True)
    got = Encoder(tmp_path).encode(crops)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    mirrored = Encoder(tmp_path).encode(np.ascontiguousarray(crops[:, :, ::-1]))
    np.testing.assert_allclose(mirrored, got, atol=1e-5)              # a face and its mirror: one embedding


def test_an_sface_encoder_ships_int8_weights_and_only_its_trained_layers(tmp_path):
    """SFace exports with int8 weights (a quarter of float32) that keep its embeddings, 112 px in the
    metadata, and no .keras: the trained layers go to encoder.weights.npz, the rest is the ONNX file."""
    pytest.importorskip("onnx")
    from realtime.config import apply_overrides
    from realtime.encoder import Encoder
    from training.export import tflite_bytes
    from training.finetune import load_weights, with_head
    from training.sface import build_sface
    encoder = with_head(build_sface())
    head = encoder.get_layer("head")
    head.set_weights([np.eye(128, dtype=np.float32) + 0.01, np.zeros(128, np.float32)])
    config = apply_overrides(Config(), {"model.backbone": "sface", "model.input_size": 112,
                                        "model.quantize": "int8-weights"})
    (tmp_path / "encoder.keras").write_bytes(b"an earlier run's student")
    weights = {"head/0": head.get_weights()[0], "head/1": head.get_weights()[1]}
    export(encoder, tmp_path, metadata(config, "triplet", True, 1.0, {}, {}),
           tflite=tflite_bytes(encoder, "int8-weights"), weights=weights)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert (meta["backbone"], meta["input_size"], meta["quantize"]) == ("sface", 112, "int8-weights")
    assert not (tmp_path / "encoder.keras").exists()                       # the stale student is gone
    assert (tmp_path / "encoder.tflite").stat().st_size < 11_000_000       # float32 would be about 39 MB
    crops = np.random.default_rng(5).integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    lite = Encoder(tmp_path).encode(crops)
    reference = np.asarray(encoder(crops.astype(np.float32) / 255.0))
    # Cosine to the float32 model: at least 0.998 on celebrity5's aligned faces; random crops move more.
    assert (lite * reference).sum(axis=1).min() > 0.99
    rebuilt = load_weights(build_sface(), tmp_path / "encoder.weights.npz")
    np.testing.assert_allclose(np.asarray(rebuilt(crops.astype(np.float32) / 255.0)), reference, atol=1e-6)


def test_export_never_writes_through_symlinks_planted_in_a_shared_out_folder(tmp_path):
    """Links planted under the old fixed temp names and under the final names (a shared --out):
    the files they point to are untouched, and the exported encoder.* are regular files."""
    from realtime.encoder import Encoder
    out, outside = tmp_path / "shared", tmp_path / "victims"
    out.mkdir()
    outside.mkdir()
    names = ["encoder.tmp.keras", "encoder.tflite.tmp", "encoder.json.tmp", "encoder.keras", "encoder.tflite",
             "encoder.json"]
    for name in names:
        (outside / name).write_text(f"precious {name}")
        (out / name).symlink_to(outside / name)
    export(build_encoder(60, 128, "seed"), out, metadata(Config(), "triplet", True, 0.9, {}, {}))
    assert all((outside / name).read_text() == f"precious {name}" for name in names)
    for name in ("encoder.keras", "encoder.tflite", "encoder.json"):
        assert (out / name).is_file() and not (out / name).is_symlink(), name
    assert Encoder(out).embedding_size == 128
    assert not [p for p in out.iterdir() if p.name.startswith(".staging-")]     # the private folder is gone


def test_encoder_json_names_its_tflite_and_a_swapped_one_is_refused(tmp_path):
    from realtime.encoder import Encoder
    from realtime.errors import UserError
    a, b = tmp_path / "a", tmp_path / "b"
    for out, seed in ((a, 1), (b, 2)):
        import keras
        keras.utils.set_random_seed(seed)
        export(build_encoder(60, 128, "seed"), out, metadata(Config(), "triplet", True, 0.9, {}, {}))
        assert json.loads((out / "encoder.json").read_text())["tflite_sha256"] == Encoder(out).model_id
    (a / "encoder.json").write_bytes((b / "encoder.json").read_bytes())   # same shape, another model
    with pytest.raises(UserError, match="describes another model"):
        Encoder(a)
