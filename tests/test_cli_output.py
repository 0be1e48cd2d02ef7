"""The command line's output and options: identify/list as RFC 4180 CSV or JSON lines, verify's exit
status, global options before the command, --help with the real defaults, no third-party noise."""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from realtime.__main__ import COMMANDS
from testdata import DATA, ROOT, needs_data

needs_model = pytest.mark.skipif(not (ROOT / "models" / "encoder.tflite").is_file(), reason="no shipped encoder in models/")


def cli(*args, cwd=None, env=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _thresholds():
    """The shipped encoder's gallery threshold (design size) and its one-person (verify) threshold."""
    from realtime.config import RecognitionConfig
    from realtime.thresholds import ThresholdPolicy
    policy = ThresholdPolicy(json.loads((ROOT / "models" / "encoder.json").read_text()), RecognitionConfig())
    return policy.for_gallery(1), policy.pair()


THRESHOLD, PAIR_THRESHOLD = _thresholds() if (ROOT / "models" / "encoder.json").is_file() else (None, None)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """Madonna enrolled from celebrity5 train, under a name with a comma and a quote."""
    if DATA is None or not (ROOT / "models" / "encoder.tflite").is_file():
        pytest.skip("needs FACES_DATA and the shipped encoder")
    path = tmp_path_factory.mktemp("g") / "g.db"
    proc = cli("enroll", 'Ciccone, "Madonna"', DATA / "celebrity5" / "train" / "madonna", "--gallery", path)
    assert proc.returncode == 0, proc.stderr
    return path


@needs_data
@needs_model
def test_identify_csv_has_a_header_a_row_per_face_and_a_row_for_a_photo_without_one(gallery, tmp_path):
    c5 = DATA / "celebrity5" / "val"
    odd = tmp_path / "a, odd\nname.jpg"                     # a comma and a newline in the path
    shutil.copy(c5 / "madonna" / "4.jpg", odd)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 128, np.uint8))
    two = tmp_path / "two.jpg"
    a, b = cv2.imread(str(c5 / "madonna" / "3.jpg")), cv2.imread(str(c5 / "elton_john" / "1.jpg"))
    cv2.imwrite(str(two), np.hstack([cv2.copyMakeBorder(a, 0, b.shape[0] - a.shape[0], 0, 0, cv2.BORDER_CONSTANT), b]))
    proc = cli("identify", odd, blank, two, "--gallery", gallery)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == ["path", "name", "nearest", "distance", "x", "y", "w", "h"]
    by_path = {}
    for row in rows[1:]:
        assert len(row) == 8, row
        by_path.setdefault(row[0], []).append(row)
    (madonna,) = by_path[str(odd)]
    assert madonna[1] == madonna[2] == 'Ciccone, "Madonna"' and float(madonna[3]) <= THRESHOLD
    assert madonna[4:] == ["38", "65", "97", "97"]
    assert by_path[str(blank)] == [[str(blank), "", "", "", "", "", "", ""]]
    assert f"{blank}: no face found" in proc.stderr
    boxes = {tuple(r[4:]) for r in by_path[str(two)]}
    assert len(by_path[str(two)]) == 2 and len(boxes) == 2              # two faces, told apart by their boxes
    assert {r[1] for r in by_path[str(two)]} <= {'Ciccone, "Madonna"', "unknown"}

    proc = cli("identify", odd, "--json", blank, "--gallery", gallery)     # options between the photos too
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert lines[0]["path"] == str(odd) and lines[0]["name"] == 'Ciccone, "Madonna"' and lines[0]["box"] == [38, 65, 97, 97]
    points = lines[0]["landmarks"]                 # the five points the face was aligned on, inside its box
    assert list(points) == ["right_eye", "left_eye", "nose", "mouth_right", "mouth_left"]
    assert all(38 <= x <= 38 + 97 and 65 <= y <= 65 + 97 for x, y in points.values())
    assert points["right_eye"][0] < points["left_eye"][0] and points["right_eye"][1] < points["mouth_right"][1]
    assert lines[1] == {"path": str(blank), "box": None, "name": None, "nearest": None, "distance": None,
                        "landmarks": None}


@needs_data
@needs_model
def test_unknown_is_unknown_in_csv_and_null_in_json(gallery):
    elton = DATA / "celebrity5" / "val" / "elton_john" / "1.jpg"
    row = list(csv.reader(io.StringIO(cli("identify", elton, "--gallery", gallery).stdout)))[1]
    assert row[1] == "unknown" and row[2] == 'Ciccone, "Madonna"' and float(row[3]) > THRESHOLD   # who was nearest
    line = json.loads(cli("identify", elton, "--json", "--gallery", gallery).stdout)
    assert line["name"] is None and line["nearest"] == 'Ciccone, "Madonna"' and line["distance"] > THRESHOLD


@needs_data
@needs_model
def test_list_is_quoted_csv_and_global_options_go_before_the_command(gallery, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"recognition:\n  gallery: {gallery}\n")
    listed = []
    for argv in (["list", "--config", config], ["--config", config, "list"], ["-v", "--gallery", gallery, "list"],
                 [f"--gallery={gallery}", "list"]):
        proc = cli(*argv)
        assert proc.returncode == 0, (argv, proc.stderr)
        listed.append(list(csv.reader(io.StringIO(proc.stdout))))
    ((header, (name, samples)),) = {tuple(map(tuple, rows)) for rows in listed}   # every form lists the same row
    assert header == ("name", "samples")                                  # a header, as identify's CSV has
    photos = len(list((DATA / "celebrity5" / "train" / "madonna").glob("*.jpg")))
    assert name == 'Ciccone, "Madonna"' and 10 <= int(samples) < photos  # one sample per photo with one face
    line = json.loads(cli("list", "--json", "--gallery", gallery).stdout)
    assert line == {"name": name, "samples": int(samples)}


@needs_data
@needs_model
def test_verify_exit_status_distance_and_threshold(tmp_path):
    c5 = DATA / "celebrity5"
    same = cli("verify", c5 / "train" / "madonna" / "6.jpg", c5 / "val" / "madonna" / "4.jpg")
    assert same.returncode == 0 and same.stdout.startswith("same person: distance "), same.stdout
    distance, threshold = (float(w) for w in same.stdout.split() if w[:1].isdigit())
    assert distance <= threshold == pytest.approx(PAIR_THRESHOLD, abs=1e-4)   # 1:1 uses the one-person point
    other = cli("verify", c5 / "val" / "madonna" / "3.jpg", c5 / "val" / "elton_john" / "1.jpg", "--json")
    result = json.loads(other.stdout)
    assert other.returncode == 1 and not result["same"] and result["distance"] > result["threshold"]
    assert cli("verify", c5 / "val" / "madonna" / "3.jpg", c5 / "val" / "madonna" / "3.jpg", "--threshold", "0.001").returncode == 0
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 128, np.uint8))
    proc = cli("verify", blank, c5 / "val" / "madonna" / "3.jpg")
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {blank}: no face found"


def test_help_shows_real_default_paths_and_every_flag_has_help():
    from realtime.config import DEFAULT_CONFIG_PATH, load_config, resolve_path
    config = load_config()
    text = cli("--help", env={"COLUMNS": "400"}).stdout
    for path in (DEFAULT_CONFIG_PATH, resolve_path(config.model.dir), resolve_path(config.recognition.gallery)):
        assert f"(default: {path}" in text, path
    for command in COMMANDS:   # the main --help names every command
        assert f" {command} " in " ".join(text.split()).replace(",", " "), command
    for command in ("", "enroll", "list", "remove", "identify", "verify"):
        proc = cli(*([command] if command else []), "--help", env={"COLUMNS": "400"})
        assert proc.returncode == 0, proc.stderr
        arguments = [l for l in proc.stdout.splitlines() if l.startswith("  ") and not l.startswith("   ")]
        assert arguments and all(re.match(r"  \S.*?\S {2,}\S", l) for l in arguments), (command, proc.stdout)


@needs_data
@needs_model
def test_third_party_noise_only_with_verbose(gallery):
    photo = DATA / "celebrity5" / "val" / "madonna" / "3.jpg"
    quiet = cli("identify", photo, "--gallery", gallery)
    assert quiet.returncode == 0 and "XNNPACK" not in quiet.stderr and "TensorFlow" not in quiet.stderr
    assert all(l.startswith(("WARNING realtime", "INFO realtime")) for l in quiet.stderr.splitlines()), quiet.stderr
    loud = cli("identify", photo, "--gallery", gallery, "-v")
    assert "XNNPACK" in loud.stderr
