"""Issue 13, the output side: no output may be an input, outputs are written by temp file and
rename, a full disk is one line, and training/evaluation never write over a model."""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from realtime.errors import UserError
from realtime.outputs import OutputStream, atomic_path, check_outputs_distinct, same_file, write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
DATA = os.environ.get("FACES_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="FACES_DATA not set: point it at the shared data folder")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def realtime(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def one_line_error(result, code=2):
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


@pytest.fixture
def clip(tmp_path):
    if not DATA:
        pytest.skip("FACES_DATA not set: point it at the shared data folder")
    video = sorted((Path(DATA) / "videos").glob("*.mp4"))[0]
    copy = tmp_path / "clip.mp4"
    shutil.copyfile(video, copy)
    return copy


# -- pure ------------------------------------------------------------------------------------------
def test_same_file_by_path_symlink_and_hard_link(tmp_path):
    a = tmp_path / "a.db"
    a.write_text("x")
    (tmp_path / "link.db").symlink_to(a)
    os.link(a, tmp_path / "hard.db")
    assert same_file(a, tmp_path / "sub" / ".." / "a.db") or same_file(a, tmp_path / "a.db")
    assert same_file(a, tmp_path / "link.db") and same_file(a, tmp_path / "hard.db")
    assert not same_file(a, tmp_path / "other.db")
    with pytest.raises(UserError, match="is the gallery"):
        check_outputs_distinct({"--events": tmp_path / "hard.db"}, {"the gallery": a})
    with pytest.raises(UserError, match="same file"):
        check_outputs_distinct({"--events": tmp_path / "e.json", "--record": tmp_path / "e.json"}, {})
    check_outputs_distinct({"--events": "/dev/null", "--record": "/dev/null"}, {"x": "/dev/null"})  # streams


def test_output_stream_replaces_only_on_commit_and_leaves_no_temp(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("the good old file\n")
    stream = OutputStream(path, "--events")
    stream.write("half\n")
    stream.close()  # an error before commit: the old file is untouched
    assert path.read_text() == "the good old file\n" and os.listdir(tmp_path) == ["events.jsonl"]
    stream = OutputStream(path, "--events")
    stream.write("new\n")
    assert path.read_text() == "the good old file\n"  # nothing visible until the rename
    stream.commit()
    stream.close()
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["events.jsonl"]


def test_atomic_path_keeps_the_suffix_and_removes_the_temp_on_error(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".mp4" and tmp.parent == tmp_path and tmp != target
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []
    write_text_atomic(tmp_path / "report.json", "{}\n")
    assert (tmp_path / "report.json").read_text() == "{}\n" and os.listdir(tmp_path) == ["report.json"]


def test_dev_full_is_one_user_error():
    stream = OutputStream("/dev/full", "--events")
    with pytest.raises(UserError, match="No space left"):
        for _ in range(10_000):
            stream.write("x" * 100 + "\n")
        stream.commit()


# -- the live program ------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, victim", [(["--events", "g.db"], "g.db"), (["--events", "clip.mp4"], "clip.mp4"),
                                          (["--record", "clip.mp4"], "clip.mp4"), (["--events", "hard.mp4"], "clip.mp4"),
                                          (["--record", "cfg.yaml", "--config", "cfg.yaml"], "cfg.yaml")])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(tmp_path, clip, flags, victim):
    gallery = tmp_path / "g.db"
    gallery.write_bytes(b"")  # an existing gallery file (SQLite accepts an empty one)
    os.link(clip, tmp_path / "hard.mp4")
    (tmp_path / "cfg.yaml").write_text("window:\n  show_fps: true\n")
    before = digest(tmp_path / victim)
    error = one_line_error(realtime("--source", "clip.mp4", "--headless", "--gallery", "g.db", "--max-frames", "5",
                                    *flags, cwd=tmp_path))
    assert "never overwrites" in error
    assert digest(tmp_path / victim) == before


def test_events_file_is_complete_and_no_temp_is_left(tmp_path, clip):
    (tmp_path / "e.jsonl").write_text("old\n")
    result = realtime("--source", "clip.mp4", "--headless", "--gallery", "g.db", "--max-frames", "5",
                      "--events", "e.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = (tmp_path / "e.jsonl").read_text().splitlines()
    assert len(lines) == 6 and "summary" in json.loads(lines[-1])
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_events_on_a_full_disk_is_one_line_and_the_recording_is_kept(tmp_path, clip):
    error = one_line_error(realtime("--source", "clip.mp4", "--headless", "--gallery", "g.db", "--max-frames", "60",
                                    "--events", "/dev/full", "--record", "out.mp4", cwd=tmp_path))
    assert "/dev/full" in error and "No space left" in error
    video = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames > 0  # finalised and playable


# -- training and evaluation -----------------------------------------------------------------------
def run_module(module, *args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "encoder.json").write_text(json.dumps({"input_size": 60, "embedding_size": 128, "threshold": 0.7}))
    (folder / "encoder.keras").write_bytes(b"not a keras file")
    (folder / "report.json").write_text('{"lfw": 0.9}\n')
    return folder


def test_training_refuses_an_existing_model_folder_without_overwrite(tmp_path):
    model = fake_model(tmp_path / "models")
    before = {p.name: digest(p) for p in model.iterdir()}
    error = one_line_error(run_module("training", "--data", tmp_path / "data", "--out", model))
    assert "--overwrite" in error
    error = one_line_error(run_module("training", "--data", tmp_path / "data", "--out", model, "--init", model,
                                      "--overwrite"))
    assert "--init model" in error and "never overwrites" in error
    assert {p.name: digest(p) for p in model.iterdir()} == before


def test_training_writes_to_a_new_runs_folder_by_default():
    from realtime.config import PROJECT_ROOT, load_config
    from training.train import output_folder
    args = argparse.Namespace(overwrite=False, config=None)
    out = output_folder(load_config(), args)
    assert out.parent == PROJECT_ROOT / "runs" and not out.exists()
    assert "/runs/" in (PROJECT_ROOT / ".gitignore").read_text()


def test_evaluate_never_writes_into_the_model_it_reads(tmp_path):
    model = fake_model(tmp_path / "m")
    before = {p.name: digest(p) for p in model.iterdir()}
    error = one_line_error(run_module("training.evaluate", "--model", model, "--out", model, "--data", tmp_path))
    assert "model folder being evaluated" in error
    from training.evaluate import output_folder
    out = output_folder(argparse.Namespace(out=None, overwrite=False), model, ROOT / "config.yaml")
    assert not same_file(out, model) and out.parent.name == "runs" and not out.exists()
    assert {p.name: digest(p) for p in model.iterdir()} == before


@pytest.mark.parametrize("json_text, keras_bytes, words", [
    ("{not json", b"x", "not valid JSON"),
    ('{"input_size": 60, "embedding_size": 128, "threshold": Infinity}', b"x", "threshold"),
    ("[" * 200_000 + "]" * 200_000, b"x", "nested too deeply"),
    ('{"input_size": 60, "embedding_size": 128, "threshold": 0.7}', b"not a zip", "cannot be loaded as a Keras"),
], ids=["bad-json", "infinite-threshold", "nested-200k", "bad-keras"])
def test_evaluate_with_a_bad_encoder_json_or_keras_is_one_line(tmp_path, json_text, keras_bytes, words):
    model = tmp_path / "m"
    model.mkdir()
    (model / "encoder.json").write_text(json_text)
    (model / "encoder.keras").write_bytes(keras_bytes)
    error = one_line_error(run_module("training.evaluate", "--model", model, "--data", tmp_path,
                                      "--out", tmp_path / "eval"))
    assert words in error
    assert not (tmp_path / "eval").exists()
