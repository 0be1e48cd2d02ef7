"""``python -m training`` end to end on celebrity5, and its one-line errors on bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.config import DetectionConfig, load_config
from realtime.errors import UserError
from training.data import load_face_set

ROOT = Path(__file__).resolve().parent.parent
DATA = os.environ.get("FACES_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="FACES_DATA not set: point it at the shared data folder")


def run_training(*args, cwd=ROOT, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "training", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


# What TensorFlow writes to stderr while it is imported (shown only with -v).
TENSORFLOW_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cuda drivers")


@needs_data
def test_without_tensorflow_training_says_what_to_install_before_reading_a_photo(tmp_path):
    """A `pip install .` environment has no TensorFlow: one line naming the extra, and no crop made."""
    code = ("import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None; "   # not importable here
            "from training.train import cli; raise SystemExit(cli(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, "--data", Path(DATA) / "celebrity5", "--out",
                             tmp_path / "out", "--cache-dir", tmp_path / "cache", "--epochs", "1"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert result.stderr.strip() == ("error: python -m training needs tensorflow and keras, which are not installed "
                                     'here: pip install ".[train]" (in the checkout), or pip install -r requirements.txt')
    assert result.returncode == 2
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_evaluate_error_is_one_line_without_tensorflow_noise(tmp_path):
    """TensorFlow's load-time lines (absl, oneDNN, CUDA) are hidden without -v, shown with it."""
    argv = [sys.executable, "-m", "training.evaluate", "--model", tmp_path, "--out", tmp_path / "out"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    quiet = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 2 and quiet.stderr == f"error: {tmp_path} has no encoder.keras or encoder.tflite: " \
                                                      f"run `python -m training --out {tmp_path}` first\n"
    loud = subprocess.run(argv + ["-v"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert loud.returncode == 2 and any(noise in loud.stderr for noise in TENSORFLOW_NOISE), loud.stderr


def test_help_shows_each_flags_default_from_the_config_and_verbose():
    result = run_training("--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    t = load_config().training
    for flag, key in (("--epochs", "epochs"), ("--method", "method"), ("--seed", "seed"), ("--data", "data")):
        assert f"(default: {getattr(t, key)}, training.{key})" in text, flag
    assert "-v, --verbose" in text and "seed repo" not in text


def test_missing_data_folder(tmp_path):
    error = assert_one_line_error(run_training("--data", tmp_path / "nope", "--out", tmp_path / "out",
                                               "--cache-dir", tmp_path / "cache"))
    assert "not found" in error


def test_one_person_dataset(tmp_path):
    for split in ("train", "val"):
        (tmp_path / "data" / split / "alice").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "data" / split / "alice" / "1.jpg"), np.zeros((40, 40, 3), np.uint8))
    error = assert_one_line_error(run_training("--data", tmp_path / "data", "--out", tmp_path / "out",
                                               "--cache-dir", tmp_path / "cache"))
    assert "at least 2 people" in error


def test_bad_flag_value_names_the_key(tmp_path):
    error = assert_one_line_error(run_training("--epochs", "0", "--data", tmp_path))
    assert "training.epochs" in error


def test_config_validation_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  margin: big\n")
    with pytest.raises(UserError, match="training.margin"):
        load_config(bad)
    bad.write_text("training:\n  warm_start_epochs: -1\n")
    with pytest.raises(UserError, match="training.warm_start_epochs"):
        load_config(bad)
    bad.write_text("model:\n  backbone: huge\n")
    with pytest.raises(UserError, match="model.backbone"):
        load_config(bad)


def test_every_configurable_method_is_registered_and_the_flag_offers_the_same():
    import dataclasses
    from realtime.config import TrainingConfig
    from training import methods
    from training.train import parse_args
    schema = next(f.metadata["choices"] for f in dataclasses.fields(TrainingConfig) if f.name == "method")
    assert set(schema) == set(methods.METHODS)
    for name in schema:
        assert parse_args(["--method", name]).method == name


@needs_data
def test_crop_cache_hit(tmp_path):
    root = Path(DATA) / "celebrity5" / "val"
    first = load_face_set(root, DetectionConfig(), 60, tmp_path, progress=False)
    second = load_face_set(root, DetectionConfig(), 60, tmp_path, progress=False)
    assert first.summary.get("cache_hits", 0) == 0
    assert second.summary["cache_hits"] == second.summary["images"] > 0
    np.testing.assert_array_equal(first.crops, second.crops)


@needs_data
def test_crop_cache_survives_a_copy_but_not_an_edit(tmp_path):
    """Keys are the photos' bytes: the same photos written again (new times) hit, an edited one does not."""
    import shutil
    root = tmp_path / "data"
    shutil.copytree(Path(DATA) / "celebrity5" / "val", root)
    first = load_face_set(root, DetectionConfig(), 60, tmp_path / "cache", progress=False)
    shutil.rmtree(root)
    shutil.copytree(Path(DATA) / "celebrity5" / "val", root)     # unpacked again: new inodes and times
    edited = sorted(root.glob("*/*.jpg"))[0]
    image = cv2.imread(str(edited))
    cv2.imwrite(str(edited), cv2.flip(image, 1))
    again = load_face_set(root, DetectionConfig(), 60, tmp_path / "cache", progress=False)
    assert again.summary["cache_hits"] == first.summary["images"] - 1


@needs_data
def test_end_to_end_celebrity5(tmp_path):
    out = tmp_path / "model"
    config = tmp_path / "finish.yaml"     # plus the shipped recipe's batch-hard finishing phase
    config.write_text("training:\n  finish_epochs: 2\n  finish_mining: batch-hard\n")
    result = run_training("--config", config, "--data", Path(DATA) / "celebrity5", "--out", out,
                          "--cache-dir", tmp_path / "cache", "--method", "triplet", "--epochs", "4",
                          "--steps-per-epoch", "10", "--seed", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    for noise in TENSORFLOW_NOISE:   # TensorFlow prints these as it loads, whatever TF_CPP_MIN_LOG_LEVEL says
        assert noise not in result.stderr, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    for key in ("method", "top1", "top1_detected", "probe_images", "probe_faces", "no_face_images", "roc_auc",
                "eer", "threshold", "far_at_threshold", "frr_at_threshold", "unknown_rejection",
                "train_seconds", "epochs"):
        assert key in report, key
    assert report["probe_images"] == 25
    assert report["top1"] >= 0.4, report          # chance is 0.2 with five people
    meta = json.loads((out / "encoder.json").read_text())
    assert meta["threshold"] == pytest.approx(report["threshold"])
    for name in ("encoder.keras", "encoder.tflite", "pca.png", "roc.png", "history.png"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 4 and len(history["finish_loss"]) == 2
    assert report["finish_epochs"] == 2 and report["finish_mining"] == "batch-hard"


def test_drop_people_leaves_out_the_excluded_names():
    from training.data import FaceSet
    from training.train import drop_people
    faces = FaceSet(np.zeros((3, 2, 2, 3), np.uint8), np.array(["Alice_A", "Zed", "Erin_E"]), np.array(["a", "b", "c"]))
    assert drop_people(faces, {"Alice_A", "Erin_E"}).labels.tolist() == ["Zed"]


@needs_data
@pytest.mark.parametrize("how", ["read-only file system", "immutable parent"])
def test_an_unwritable_out_is_refused_before_training_starts(tmp_path, how, mount_tmpfs):
    """It was found only when training had ended (hours lost)."""
    if how == "read-only file system":
        parent, undo = mount_tmpfs("64k", "ro"), ["true"]
    else:
        if os.geteuid() != 0:
            pytest.skip("setting the immutable flag needs root")
        parent = tmp_path / "parent"
        parent.mkdir()
        proc = subprocess.run(["chattr", "+i", str(parent)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"{how} not possible here: {proc.stderr.strip()}")
        undo = ["chattr", "-i", str(parent)]
    try:
        result = run_training("--data", Path(DATA) / "celebrity5", "--out", parent / "run" / "model", "--epochs", 1,
                              "--cache-dir", tmp_path / "cache")
    finally:
        subprocess.run(undo, capture_output=True)
    error = assert_one_line_error(result)
    assert f"--out {parent / 'run' / 'model'} cannot be written" in error and "nothing was trained" in error, error
    assert "training on" not in result.stderr                     # refused before the data was even read
    assert list(parent.iterdir()) == []
