"""Enrollment without the window: from a clip (well-spread, steady views of its one face) and, with
--largest, from photos that show several faces."""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.video_enroll import candidate_frames, main_person, spread

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ["FACES_DATA"]) if os.environ.get("FACES_DATA") else None
needs_data = pytest.mark.skipif(DATA is None, reason="FACES_DATA is not set (point it at the shared data folder)")
needs_model = pytest.mark.skipif(not (ROOT / "models" / "encoder.tflite").is_file(), reason="no shipped encoder in models/")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_sample_choice_is_spread_and_keeps_the_main_person():
    frames = candidate_frames(200, 5)
    assert len(frames) == 24 and frames[0] == 0 and frames[-1] == 198 and frames == sorted(set(frames))
    assert candidate_frames(1, 5) == [0] and candidate_frames(0, 5) == []
    assert spread(list(range(10)), 3) == [0, 4, 9] and spread([1, 2], 5) == [1, 2]
    rng = np.random.default_rng(0)
    main = rng.normal(0, 0.05, (8, 4)) + np.array([1, 0, 0, 0])
    other = rng.normal(0, 0.05, (3, 4)) + np.array([0, 1, 0, 0])
    assert main_person(np.vstack([main, other]), 0.7).tolist() == [True] * 8 + [False] * 3


@needs_data
@needs_model
def test_enroll_from_a_clip_recognises_the_person_in_another_clip(tmp_path):
    gallery = tmp_path / "g.db"
    videos = DATA / "videos"
    proc = cli("enroll", "Katie Hill", "--source", videos / "sadtalker_WDA_KatieHill_000.mp4", "--samples", "12",
               "--gallery", gallery)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("enrolled Katie Hill: 12 samples from ")
    frames = [int(f) for f in proc.stdout.split("(frames ")[1].split(")")[0].split(", ")]
    assert len(frames) == 12 and frames == sorted(frames) and frames[-1] - frames[0] >= 120   # spread over 200 frames
    assert list(csv.reader(io.StringIO(cli("list", "--gallery", gallery).stdout))) == [["name", "samples"],
                                                                                      ["Katie Hill", "12"]]
    # The samples are of her: the clip's own frames are named, another person's clip is not.
    proc = cli("--source", videos / "sadtalker_WDA_KatieHill_000.mp4", "--headless", "--max-frames", "40",
               "--events", "-", "--gallery", gallery)
    named = [f["name"] for l in proc.stdout.splitlines()[:-1] for f in json.loads(l)["faces"]]
    # (the first two frames are unknown by design: a name needs 3 agreeing frames)
    assert named and named.count("Katie Hill") / len(named) > 0.8, proc.stderr
    proc = cli("--source", videos / "sadtalker_WDA_AlexandriaOcasioCortez_000.mp4", "--headless", "--max-frames", "40",
               "--events", "-", "--gallery", gallery)
    named = [f["name"] for l in proc.stdout.splitlines()[:-1] for f in json.loads(l)["faces"]]
    assert named and named.count("Katie Hill") / len(named) < 0.1, proc.stderr


@needs_data
@needs_model
def test_enroll_from_a_clip_without_a_face_is_one_line_and_enrolls_nothing(tmp_path):
    clip = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for i in range(30):
        writer.write(np.full((120, 160, 3), 40 + i, np.uint8))
    writer.release()
    proc = cli("enroll", "Nobody", "--source", clip, "--samples", "5", "--gallery", tmp_path / "g.db")
    assert proc.returncode == 2 and proc.stderr.strip().endswith("no steady face in 24 frames looked at (0 with a face): nothing enrolled")
    assert not (tmp_path / "g.db").exists()


def test_enroll_needs_photos_or_a_source_not_both(tmp_path):
    for argv in (["enroll", "Ann"], ["enroll", "Ann", "x.jpg", "--source", "clip.mp4"], ["enroll", "Ann", "x.jpg", "--samples", "3"]):
        proc = cli(*argv, "--gallery", tmp_path / "g.db")
        assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr, argv


@needs_data
@needs_model
def test_largest_takes_the_largest_face_of_a_photo_with_several(tmp_path):
    c5 = DATA / "celebrity5" / "val"
    big = cv2.imread(str(c5 / "madonna" / "3.jpg"))                       # her face: 128 px
    small = cv2.resize(cv2.imread(str(c5 / "elton_john" / "1.jpg")), (150, 150))
    crowd = tmp_path / "crowd.jpg"
    cv2.imwrite(str(crowd), np.hstack([big, cv2.copyMakeBorder(small, 0, big.shape[0] - 150, 0, 0, cv2.BORDER_CONSTANT)]))
    gallery = tmp_path / "g.db"
    proc = cli("enroll", "Madonna", crowd, "--gallery", gallery)
    assert proc.returncode == 2 and "2 faces found (--largest takes the largest), skipped" in proc.stderr
    proc = cli("enroll", "Madonna", "--largest", crowd, "--gallery", gallery)    # a flag between name and photos
    assert proc.returncode == 0 and proc.stdout.startswith("enrolled Madonna: 1 sample from 1 photo, 0 skipped"), proc.stderr
    row = json.loads(cli("identify", "--json", c5 / "madonna" / "3.jpg", "--gallery", gallery).stdout)  # her face, not his
    assert row["name"] == "Madonna" and row["distance"] < 0.2, row   # (Elton John is over 1.0 from her)
