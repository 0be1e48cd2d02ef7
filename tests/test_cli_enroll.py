"""Enrollment without the window: from a clip (well-spread, steady views of its one face) and, with
--largest, from photos that show several faces."""
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from commands import one_line_error
from testdata import DATA, ROOT, needs_data

needs_model = pytest.mark.skipif(not (ROOT / "models" / "encoder.tflite").is_file(), reason="no shipped encoder in models/")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env=dict(os.environ, PYTHONPATH=str(ROOT)))


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
    line = one_line_error(proc)
    assert line.endswith("no steady face in 24 frames looked at (0 with a face): nothing enrolled"), line
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


@needs_data
@needs_model
def test_photos_already_enrolled_are_skipped_and_replace_starts_the_person_afresh(tmp_path):
    c5 = DATA / "celebrity5"
    gallery = tmp_path / "g.db"
    first = cli("enroll", "Madonna", c5 / "train" / "madonna", "--gallery", gallery)
    photos = len(list((c5 / "train" / "madonna").glob("*.jpg")))
    found = re.fullmatch(rf"enrolled Madonna: (\d+) samples from {photos} photos, (\d+) skipped, (\d+) in total\n",
                         first.stdout)
    assert first.returncode == 0 and found and found[1] == found[3], first.stdout + first.stderr
    n, skipped = int(found[1]), int(found[2])
    renamed = tmp_path / "same_bytes_other_name.jpg"
    renamed.write_bytes((c5 / "train" / "madonna" / "6.jpg").read_bytes())   # (a photo of her alone)
    again = cli("enroll", "Madonna", c5 / "train" / "madonna", renamed, c5 / "val" / "madonna" / "1.jpg",
                "--gallery", gallery)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"enrolled Madonna: 1 sample from {photos + 2} photos, {skipped} skipped, " \
                                   f"{n + 1} already enrolled, {n + 1} in total"   # only the new val photo: the
    nothing_new = cli("enroll", "Madonna", c5 / "val" / "madonna" / "1.jpg", "--gallery", gallery)   # renamed copy
    assert nothing_new.returncode == 0 and \
        f"0 samples from 1 photo, 0 skipped, 1 already enrolled, {n + 1} in total" in nothing_new.stdout   # is the same
    other = cli("enroll", "Ann", c5 / "val" / "madonna" / "1.jpg", "--gallery", gallery)   # another person: not a dup
    assert other.returncode == 0 and "1 in total" in other.stdout
    fresh = cli("enroll", "Madonna", "--replace", c5 / "val" / "madonna", "--gallery", gallery)
    assert fresh.returncode == 0 and fresh.stdout.strip() == "enrolled Madonna: 5 samples from 5 photos, 0 skipped, " \
                                                             "5 in total"
    assert list(csv.reader(io.StringIO(cli("list", "--gallery", gallery).stdout)))[1:] == [["Ann", "1"], ["Madonna", "5"]]
    failed = cli("enroll", "Madonna", "--replace", tmp_path / "none.png", "--gallery", gallery)   # nothing usable:
    assert failed.returncode == 2                                                                  # nobody removed
    assert list(csv.reader(io.StringIO(cli("list", "--gallery", gallery).stdout)))[2] == ["Madonna", "5"]


def people_folder(tmp_path) -> Path:
    """Two people of celebrity5 (one of them in GIF), a folder without a usable photo, a hidden folder."""
    from PIL import Image
    root = tmp_path / "people"
    c5 = DATA / "celebrity5" / "train"
    for name, person in (("Ann", "madonna"), ("Bob Ó", "elton_john")):
        (root / name).mkdir(parents=True)
        for photo in ("2.jpg", "5.jpg", "6.jpg"):
            target = root / name / photo
            if name == "Bob Ó":   # GIF photos (the Yale faces' format) are read too
                Image.open(c5 / person / photo).convert("RGB").save(target.with_suffix(".gif"))
            else:
                target.write_bytes((c5 / person / photo).read_bytes())
    (root / "Nobody").mkdir()
    cv2.imwrite(str(root / "Nobody" / "blank.png"), np.full((120, 160, 3), 128, np.uint8))
    (root / ".thumbnails").mkdir()
    return root


@needs_data
@needs_model
def test_enroll_people_enrolls_every_subfolder_with_a_line_per_person(tmp_path):
    root = people_folder(tmp_path)
    gallery = tmp_path / "g.db"
    proc = cli("enroll", "--people", root, "--gallery", gallery)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "enrolled Ann: 3 samples from 3 photos, 0 skipped, 3 in total",
        "enrolled Bob Ó: 3 samples from 3 photos, 0 skipped, 3 in total",
        "not enrolled Nobody: no photo with exactly one face among 1: nothing enrolled",
        f"enrolled 2 of 3 people from {root}"]
    assert list(csv.reader(io.StringIO(cli("list", "--gallery", gallery).stdout))) == [
        ["name", "samples"], ["Ann", "3"], ["Bob Ó", "3"]]
    again = cli("enroll", "--people", root, "--gallery", gallery)   # the same folder again: nothing doubled
    assert again.returncode == 0 and "enrolled Ann: 0 samples from 3 photos, 0 skipped, 3 already enrolled, 3 in total" \
        in again.stdout
    for argv in (["enroll", "Ann", "--people", root], ["enroll", "--people", root, "--source", "x.mp4"],
                 ["enroll", "--people", tmp_path / "missing"], ["enroll"]):
        bad = cli(*argv, "--gallery", gallery)
        assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr, argv


@needs_data
@needs_model
def test_enroll_people_shows_a_progress_bar_on_a_terminal_only(tmp_path):
    import pty
    import select
    root = people_folder(tmp_path)
    import fcntl
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))   # a terminal 100 columns wide
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "enroll", "--people", root, "--gallery", tmp_path / "g.db"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=slave, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:   # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    assert b"photo/s" in seen or b"s/photo" in seen, seen[-500:]                    # tqdm's bar, counting photos
    piped = cli("enroll", "--people", root, "--gallery", tmp_path / "h.db")
    assert "photo/s" not in piped.stderr and "s/photo" not in piped.stderr          # no bar in a pipe or a log


def test_special_files_in_a_photo_folder_are_named_in_a_warning(tmp_path, caplog):
    """A FIFO, a broken link and a link loop named like photos were skipped without a word."""
    import logging
    from realtime.__main__ import _photos
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "real.jpg"), np.zeros((32, 32, 3), np.uint8))
    os.mkfifo(folder / "pipe.jpg")
    (folder / "sub" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    with caplog.at_level(logging.WARNING):
        found = _photos([str(folder)])
    assert found == [folder / "real.jpg"]
    assert f"{folder / 'pipe.jpg'} is a FIFO (named pipe), not a photo: skipped" in caplog.text
    assert f"{folder / 'sub' / 'gone.png'} is a broken symlink" in caplog.text
    assert f"{folder / 'loop.jpg'} is a symlink loop" in caplog.text
