"""``python -m benchmarks --quick`` end to end on a few frames: the table has every row, and the
numbers are there and positive (no timing assertions: this machine's speed is not under test)."""
import json
import os
import subprocess
import sys

import pytest
from testdata import MODEL, ROOT

DATA = os.environ.get("FACES_DATA")

pytestmark = [
    pytest.mark.skipif(not DATA, reason="FACES_DATA is not set (point it at the shared data folder)"),
    pytest.mark.skipif(not all((MODEL / f).is_file() for f in ("encoder.tflite", "encoder.json")),
                       reason=f"no trained encoder in {MODEL} (run `python -m training` first)"),
]


def run(*args, env=None, timeout=600):
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run([sys.executable, "-m", "benchmarks", *map(str, args)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def test_help():
    proc = run("--help")
    assert proc.returncode == 0 and "--quick" in proc.stdout and "--model" in proc.stdout


def test_missing_data_is_one_line_error(tmp_path):
    proc = run("--data", tmp_path / "nothing", "--model", MODEL, "--out", tmp_path / "r.md")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not found" in proc.stderr


def test_quick_run_writes_every_row_with_positive_numbers(tmp_path):
    out = tmp_path / "results.md"
    proc = run("--quick", "--data", DATA, "--model", MODEL, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert text.strip() in proc.stdout          # the table printed is the table written
    result = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["size"], r["faces"]) for r in result["loop"]}
    assert rows == {(s, k) for s in ("640x480", "1280x720") for k in (0, 1, 3)}
    for r in result["loop"]:
        for loop in ("fast", "baseline"):
            s = r[loop]
            assert s["frames"] > 0 and s["fps"] > 0 and s["latency_ms"]["median"] > 0
            assert set(s["stages_ms"]) == {"capture", "detect", "encode", "match", "draw"}
            assert s["stages_ms"]["capture"]["median"] > 0 and s["stages_ms"]["detect"]["p95"] > 0
            if r["faces"]:
                assert s["stages_ms"]["encode"]["median"] > 0
        assert r["speedup"] > 0
        assert f"| {r['size']} | {r['faces']} | fast |" in text and f"| {r['size']} | {r['faces']} | baseline |" in text
    assert [r["samples"] for r in result["match"]] == [10, 1_000, 100_000]
    for r in result["match"]:
        assert all(r[k]["median"] > 0 for k in ("fast_1", "fast_3", "float32_1", "baseline_1", "baseline_3"))
        assert r["agree"] is True
    assert [r["int8"] for r in result["match"]] == [False, False, True]   # int8 scores from 20,000 up
    labels = [r["label"] for r in result["ablation"]]
    assert labels[0].startswith("all on") and any("detection.scale" in l for l in labels)
    assert any("detection.every" in l for l in labels) and any("detection.worker" in l for l in labels)
    assert all(r["run"]["fps"] > 0 for r in result["ablation"])
    videos = [r["video"] for r in result["accuracy"]]
    assert videos[0].startswith("celebrity5") and any(v.endswith(".mp4") for v in videos[1:])
    for r in result["accuracy"]:
        for loop in ("fast", "baseline"):
            assert r[loop]["frames"] > 0 and 0 <= r[loop]["name"] <= r[loop]["box"] <= 1
    assert {t["target"] for t in result["targets"]} and all(isinstance(t["met"], bool) for t in result["targets"])
    for heading in ("## Targets", "## Loop speed", "## Matching time per frame", "## Ablation", "## Accuracy",
                    "## Strangers"):
        assert heading in text
    clips = [r for r in result["strangers"] if not r["enrolled"]]
    assert len(clips) == 4 and all(r["face_frames"] > 100 and 0 <= r["unknown"] <= 1 for r in clips)
    (val,) = [r for r in result["strangers"] if r["enrolled"]]
    assert val["face_frames"] > 100 and 0 <= val["named_right"] <= 1 and 0 <= val["photos_named_right"] <= 1
    assert val["named_right"] <= val["ceiling"] <= 1   # the photos themselves enrolled name them at least as often
    assert any(t["target"].startswith("strangers") for t in result["targets"])


def test_recording_cost_prints_both_writers_at_every_size():
    """``python -m benchmarks.recording``: what --record costs per frame, mp4v against H.264 (PyAV)."""
    pytest.importorskip("av")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.recording", "--data", DATA, "--frames", "6"], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "ms/frame" in line]
    assert [r.split(" | ")[0] for r in rows] == ["| OpenCV mp4v (MPEG-4 Part 2)", rows[1].split(" | ")[0]]
    assert "libx264 (H.264)" in rows[1]
    for row in rows:
        numbers = [float(cell.split(" ms/frame")[0]) for cell in row.split(" | ")[1:]]
        assert len(numbers) == 3 and all(n > 0 for n in numbers), row
