"""``python -m training`` under tf.distribute for real: two local workers (``TF_CONFIG``) and a
mirrored run over two logical CPU devices, each a few steps on celebrity5."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = os.environ.get("FACES_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="FACES_DATA not set: point it at the shared data folder")
# Three epochs of six P x K steps: enough for the epoch-mean triplet loss to fall, short enough for CI.
STEPS = ["--method", "triplet", "--epochs", "3", "--steps-per-epoch", "6", "--seed", "1"]
# Two logical CPU devices have to be configured before TensorFlow starts; then it is the normal CLI.
TWO_CPUS = ("import sys, tensorflow as tf; cpu = tf.config.list_physical_devices('CPU')[0]; "
            "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
            "from training.train import cli; raise SystemExit(cli(sys.argv[1:]))")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra) -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One crop cache for every run, filled here once with the settings the command uses (so the
    two workers do not both crop every photo at the same time)."""
    from training.train import load_training_data, parse_args, settings
    folder = tmp_path_factory.mktemp("crops")
    load_training_data(settings(parse_args(training_args(folder, folder / "unused"))), set())
    return folder


def training_args(cache: Path, out: Path) -> list[str]:
    return ["--data", str(Path(DATA) / "celebrity5"), "--out", str(out), "--cache-dir", str(cache), *STEPS]


def check_model(out: Path) -> None:
    """The exported encoder loads (the live program's way and Keras'), and the loss fell."""
    from realtime.encoder import Encoder
    for name in ("encoder.keras", "encoder.tflite", "encoder.json", "report.json", "history.json"):
        assert (out / name).is_file(), name
    crops = np.random.default_rng(0).integers(0, 256, (3, 60, 60, 3), dtype=np.uint8)
    embeddings = Encoder(out).encode(crops)
    assert embeddings.shape == (3, 128) and np.isfinite(embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-3)
    from training.evaluate import load_encoder
    model, meta = load_encoder(out)
    assert model.output_shape == (None, 128) and meta["method"] == "triplet"
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0], history["loss"]
    assert len(history["val_auc"]) == 3        # the validation curve works under the strategy too


@needs_data
def test_two_workers_train_together_and_only_the_chief_writes(tmp_path, cache):
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    outs = [tmp_path / "chief", tmp_path / "worker1"]
    procs = []
    for i, out in enumerate(outs):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "training", "--strategy", "multi-worker", *training_args(cache, out)],
            cwd=ROOT, env=env(TF_CONFIG=tf_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=240)[1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
        assert "strategy multi-worker: 2 replicas in sync" in log, log[-3000:]
    assert "not the chief worker" in logs[1] and "not the chief worker" not in logs[0]
    assert not outs[1].exists()          # the second worker trained, but wrote nothing
    check_model(outs[0])


@needs_data
def test_mirrored_over_two_cpu_devices(tmp_path, cache):
    out = tmp_path / "model"
    result = subprocess.run([sys.executable, "-c", TWO_CPUS, "--strategy", "mirrored", *training_args(cache, out)],
                            cwd=ROOT, env=env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "strategy mirrored: 2 replicas in sync" in result.stderr, result.stderr[-3000:]
    check_model(out)
