"""training.data: bad training photos are a one-line message or a counted skip, never a traceback; the
crop cache (private, pickle-free, rebuilt when damaged).

Built from real celebrity5 photos (read from $FACES_DATA, written only under tmp_path).
"""
import logging
import os

import cv2
import numpy as np
import pytest

from realtime.config import DetectionConfig
from realtime.errors import UserError, run_command
from training.data import cache_file, load_face_set, summary_line

FACES_DATA = os.environ.get("FACES_DATA")
pytestmark = pytest.mark.skipif(not FACES_DATA, reason="FACES_DATA not set: these tests build bad inputs "
                                                       "from the real celebrity5 photos")
SETTINGS = DetectionConfig()
SIZE = 60


@pytest.fixture(scope="module")
def bad_set(face_photos, tmp_path_factory):
    """One dataset with every kind of bad input, loaded once: tests below check each case."""
    root = tmp_path_factory.mktemp("bad_set")
    (good, box), *others = face_photos
    alice, bob = root / "alice", root / "bob"
    alice.mkdir()
    bob.mkdir()
    (root / "carol_empty").mkdir()
    (root / ".ipynb_checkpoints").mkdir()
    (root / ".ipynb_checkpoints" / "x.jpg").write_bytes(good.read_bytes())
    data = good.read_bytes()
    (alice / "good.jpg").write_bytes(data)
    (alice / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (alice / "corrupt.jpg").write_bytes(data[:2] + os.urandom(len(data) - 2))
    (alice / "text.jpg").write_text("this is not a photo\n")
    (alice / "notes.txt").write_text("alice, 2024\n")
    (alice / ".DS_Store").write_bytes(b"\0" * 64)
    cv2.imwrite(str(alice / "gray_wall.png"), np.full((240, 320, 3), 128, np.uint8))
    for i, (path, _) in enumerate(others):
        (bob / f"{i}.jpg").write_bytes(path.read_bytes())
    cache = tmp_path_factory.mktemp("cache") / "crops"
    faces = load_face_set(root, SETTINGS, SIZE, cache, min_people=2, progress=False)
    return root, cache, faces


def test_missing_dataset_folder_is_a_user_error_naming_it(tmp_path):
    missing = tmp_path / "no_such_data"
    with pytest.raises(UserError, match="no_such_data.*not found"):
        load_face_set(missing, SETTINGS, SIZE, None, progress=False)


def test_dataset_path_that_is_a_file(tmp_path):
    path = tmp_path / "data.jpg"
    path.write_bytes(b"x")
    with pytest.raises(UserError, match="not a folder"):
        load_face_set(path, SETTINGS, SIZE, None, progress=False)


def test_missing_folder_through_run_command_is_one_line(tmp_path, capsys):
    code = run_command(lambda argv: load_face_set(tmp_path / "gone", SETTINGS, SIZE, None, progress=False))
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("error: ") and err.count("\n") == 1 and "gone" in err


def test_one_person_when_two_are_needed(face_photos, tmp_path):
    (tmp_path / "solo").mkdir()
    (tmp_path / "solo" / "a.jpg").write_bytes(face_photos[0][0].read_bytes())
    with pytest.raises(UserError, match="at least 2") as info:
        load_face_set(tmp_path, SETTINGS, SIZE, None, min_people=2, progress=False)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_two_folders_but_only_one_with_a_face(face_photos, tmp_path):
    """Counting folders is not enough: a person whose photos hold no face is no person to train on."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "1.jpg").write_bytes(face_photos[0][0].read_bytes())
    cv2.imwrite(str(tmp_path / "b" / "wall.png"), np.full((200, 200, 3), 90, np.uint8))
    with pytest.raises(UserError, match="only 1 person.*1 no face"):
        load_face_set(tmp_path, SETTINGS, SIZE, None, min_people=2, progress=False)


def test_good_photos_are_used(bad_set):
    _, _, faces = bad_set
    assert faces.summary["faces"] == 4 == len(faces)
    assert faces.people == ["alice", "bob"]
    assert faces.crops.shape == (4, SIZE, SIZE, 3) and faces.crops.dtype == np.uint8


def test_photo_without_a_face_is_skipped_and_counted(bad_set):
    _, _, faces = bad_set
    assert faces.summary["no_face"] == 1
    assert "1 no face" in summary_line(faces.summary)
    assert not any("gray_wall" in p for p in faces.paths.tolist())


def test_corrupt_truncated_and_text_jpegs_are_counted_unreadable(bad_set):
    _, _, faces = bad_set
    assert faces.summary["unreadable"] == 3
    assert "3 unreadable" in summary_line(faces.summary)


def test_non_image_file_and_empty_person_folder_are_counted(bad_set):
    _, _, faces = bad_set
    line = summary_line(faces.summary)
    assert faces.summary["non_image"] == 1 and "1 non image" in line
    assert faces.summary["empty_person_folder"] == 1 and "1 empty person folder" in line
    assert "\n" not in line


def test_hidden_folders_and_files_are_ignored(bad_set):
    _, _, faces = bad_set
    assert ".ipynb_checkpoints" not in faces.people
    assert faces.summary["images"] == 8  # 5 photo-named files of alice's, 3 of bob's


def test_second_load_comes_from_the_cache(bad_set):
    root, cache, first = bad_set
    again = load_face_set(root, SETTINGS, SIZE, cache, min_people=2, progress=False)
    assert again.summary["cache_hits"] == again.summary["images"] == 8
    assert np.array_equal(again.crops, first.crops) and again.labels.tolist() == first.labels.tolist()
    assert again.summary["unreadable"] == 3 and again.summary["no_face"] == 1
    assert "8 cache hits" in summary_line(again.summary)


def test_cache_file_is_0600_and_its_folder_0700(bad_set):
    root, cache, _ = bad_set
    path = cache_file(cache, root, SETTINGS, SIZE)
    assert path.is_file()
    assert path.stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700
    assert not list(cache.glob("*.tmp"))


def test_existing_open_cache_folder_is_tightened(face_photos, tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "a" / "1.jpg").write_bytes(face_photos[0][0].read_bytes())
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o755)
    load_face_set(root, SETTINGS, SIZE, cache, progress=False)
    assert cache.stat().st_mode & 0o777 == 0o700
    assert cache_file(cache, root, SETTINGS, SIZE).stat().st_mode & 0o777 == 0o600


def test_a_shared_sticky_folder_is_never_tightened(tmp_path, caplog):
    # cache_dir: /tmp run as root (who owns /tmp) once turned /tmp into 0700 and locked every
    # other user out, PostgreSQL's initdb included. A sticky, world-writable folder stays as it is.
    from training.data import write_private_npz
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with caplog.at_level(logging.WARNING):
        write_private_npz(shared / "teacher.npz", keys=np.array(["a"]), embeddings=np.zeros((1, 2), np.float32))
    assert shared.stat().st_mode & 0o7777 == 0o1777
    assert (shared / "teacher.npz").stat().st_mode & 0o777 == 0o600
    assert any("shared (sticky)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "inconsistent"])
def test_corrupt_cache_is_rebuilt(face_photos, tmp_path, caplog, damage):
    root = tmp_path / "data"
    for i, (path, _) in enumerate(face_photos[:2]):
        (root / f"p{i}").mkdir(parents=True)
        (root / f"p{i}" / "1.jpg").write_bytes(path.read_bytes())
    cache = tmp_path / "cache"
    first = load_face_set(root, SETTINGS, SIZE, cache, progress=False)
    path = cache_file(cache, root, SETTINGS, SIZE)
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    else:  # a valid .npz whose statuses claim more faces than it has crops
        with np.load(path, allow_pickle=False) as data:
            keys, statuses = data["keys"], data["statuses"]
        np.savez(path.open("wb"), keys=keys, statuses=statuses, crops=np.zeros((0, SIZE, SIZE, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger="training.data"):
        rebuilt = load_face_set(root, SETTINGS, SIZE, cache, progress=False)
    assert "rebuilding" in caplog.text
    assert rebuilt.summary["cache_hits"] == 0 and np.array_equal(rebuilt.crops, first.crops)
    third = load_face_set(root, SETTINGS, SIZE, cache, progress=False)
    assert third.summary["cache_hits"] == 2  # the rebuilt cache is good again


def test_unwritable_cache_is_a_warning_not_a_crash(face_photos, tmp_path, caplog):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "a" / "1.jpg").write_bytes(face_photos[0][0].read_bytes())
    not_a_folder = tmp_path / "cache_is_a_file"
    not_a_folder.write_text("x")
    with caplog.at_level(logging.WARNING, logger="training.data"):
        faces = load_face_set(root, SETTINGS, SIZE, not_a_folder / "sub", progress=False)
    assert len(faces) == 1 and "cannot be written" in caplog.text


def test_crop_cache_format_loads_without_pickle(tmp_path):
    """The cache is written with plain string and uint8 arrays, so allow_pickle=False reads it."""
    from training.data import _read_cache, _write_cache

    path = tmp_path / "cache" / "crops.npz"
    crop = np.zeros((8, 8, 3), np.uint8)
    _write_cache(path, {"a|1|2": ("face", crop), "b|1|2": ("no_face", None)}, 8)
    with np.load(path, allow_pickle=False) as data:
        assert data["keys"].dtype.kind == "U" and data["crops"].dtype == np.uint8
        assert data["statuses"].tolist() == ["face", "no_face"]
    # and the training code's own reader (allow_pickle=False too) gets back what was written
    entries = _read_cache(path, 8)
    assert entries["b|1|2"] == ("no_face", None) and entries["a|1|2"][0] == "face"
    np.testing.assert_array_equal(entries["a|1|2"][1], crop)
