"""The SQLite gallery file under abuse: damaged rows, a lock held by another process, file modes,
symbolic links, and commands that must not create a gallery (issue 13 items 7, 8, 15; issue 14
item 11)."""
from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from realtime.config import load_config

from commands import error_line, run_main
from gallery_live import CLIP, Live, child_env, long_clip, nearest_is
from realtime.errors import UserError
from realtime.gallery import SQLiteStore, open_gallery
from testdata import DATA, MODEL, ROOT, needs_data, needs_model


def test_gallery_round_trip_mode_and_unicode_names(tmp_path):
    path = tmp_path / "sub" / "g.db"
    rng = np.random.default_rng(1)
    with SQLiteStore(path, "model-a") as g:
        assert len(g.index()) == 0
        assert g.add_samples("../etc/passwd", rng.normal(size=(2, 8))) == 2
        assert g.add_samples("Zo\u00eb \u674e", rng.normal(size=(3, 8))) == 3
        assert g.add_samples("Zo\u00eb \u674e", rng.normal(size=(1, 8))) == 4
        index = g.index()
        assert len(index) == 6 and set(index.names) == {"../etc/passwd", "Zo\u00eb \u674e"}
        assert g.index() is index            # cached until the gallery changes
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / "sub")) == ["g.db"]   # the name made no file
    with SQLiteStore(path, "model-a") as g:
        assert g.people() == [("../etc/passwd", 2), ("Zo\u00eb \u674e", 4)]
        assert g.remove("../etc/passwd") == 2
        with pytest.raises(UserError):
            g.remove("nobody")
        assert g.people() == [("Zo\u00eb \u674e", 4)]


def test_gallery_of_another_encoder_is_refused(tmp_path):
    path = tmp_path / "g.db"
    with SQLiteStore(path, "model-a") as g:
        g.add_samples("ann", np.ones((1, 4)))
    with pytest.raises(UserError, match="re-enroll"):
        SQLiteStore(path, "model-b")
    with SQLiteStore(path, None) as g:      # list/remove still work
        assert g.people() == [("ann", 1)]


def test_failed_enrollment_leaves_earlier_state(tmp_path):
    with SQLiteStore(tmp_path / "g.db", "m") as g:
        g.add_samples("ann", np.ones((2, 4)))
        bad = np.ones((2, 4), np.float32)
        with pytest.raises(ValueError):
            g.add_samples("bob", bad[:0])
        with pytest.raises(UserError):
            g.add_samples("", bad)
        assert g.people() == [("ann", 2)]


def test_gallery_index_sees_other_connections(tmp_path):
    path = tmp_path / "g.db"
    with SQLiteStore(path, "m") as a, SQLiteStore(path, "m") as b:
        assert len(a.index()) == 0
        b.add_samples("bob", np.ones((1, 4)))
        assert a.index().names == ("bob",)


# == item 7: damaged samples ===================================================================================
def test_add_samples_refuses_non_finite_and_wrong_length_and_stores_nothing(tmp_path):
    with SQLiteStore(tmp_path / "g.db", "m") as g:
        g.add_samples("ann", np.ones((2, 4)))
        for bad, words in [(np.array([[1, np.nan, 0, 0]]), "NaN"), (np.array([[1, np.inf, 0, 0]]), "infinite"),
                           (np.ones((1, 5)), "5 numbers"), (np.ones((2, 0)), "non-empty"), (np.ones(4), "non-empty")]:
            with pytest.raises(ValueError, match=words):
                g.add_samples("bob", bad)
        assert g.people() == [("ann", 2)]
    with SQLiteStore(tmp_path / "g.db", "m", dim=4) as g:     # the encoder's size, when known, rules from the start
        with pytest.raises(ValueError, match="3 numbers"):
            g.add_samples("cy", np.ones((1, 3)))


def test_a_gallery_with_damaged_rows_names_them_and_still_recognises(tmp_path, caplog):
    path = tmp_path / "g.db"
    with SQLiteStore(path, "m") as g:
        g.add_samples("ann", np.eye(4)[:2])
        g.add_samples("bob", np.eye(4)[2:])
    db = sqlite3.connect(path)
    db.executemany("INSERT INTO samples(person_id, embedding, model_id, created) VALUES (?, ?, 'm', 0)",
                   [(2, np.array([np.nan, 0, 0, 1], np.float32).tobytes()),   # NaN
                    (2, np.ones(3, np.float32).tobytes()),                     # wrong length
                    (2, "text, not numbers"), (2, 12345)])                     # not a blob at all
    db.commit()
    db.close()
    with SQLiteStore(path, "m") as g:
        index = g.index()
        assert len(index) == 4 and set(index.names) == {"ann", "bob"}
        from realtime.matching import match
        assert [m.name for m in match(index, np.eye(4), 0.5)] == ["ann", "ann", "bob", "bob"]   # not all unknown
        assert dict(g.people())["bob"] == 6                                   # list shows what is stored
    assert "4 damaged samples" in caplog.text and "'bob' (sample 5)" in caplog.text
    assert "remove those people and enroll them again" in caplog.text


# == item 8: a gallery locked by another process ================================================================
def test_write_commands_on_a_locked_gallery_say_it_is_busy(tmp_path, capsys):
    path = tmp_path / "g.db"
    with SQLiteStore(path, "m") as g:
        g.add_samples("ann", np.ones((1, 4)))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        line = error_line(*run_main(capsys, "remove", "ann", "--gallery", path)[::2])
        assert "is busy (locked by another process)" in line and "not a gallery" not in line, line
        with pytest.raises(UserError, match="is busy \\(locked by another process\\)"):
            with SQLiteStore(path, "m", busy_timeout=0.2) as g:
                g.add_samples("bob", np.ones((1, 4)))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with SQLiteStore(path, None) as g:
        assert g.people() == [("ann", 1)]


@needs_data
@needs_model
def test_live_loop_keeps_running_on_its_index_while_the_gallery_is_locked(tmp_path):
    """A lock held for 7 s (more than SQLite's 5 s wait) while a live loop runs: the loop goes on
    recognising with the index it has, says the gallery is busy, and follows changes once it is free."""
    from realtime.encoder import Encoder
    path = tmp_path / "g.db"
    encoder = Encoder(MODEL)
    clip = long_clip(tmp_path / "long.mp4", repeats=40)
    with SQLiteStore(path, encoder.model_id) as g:
        g.add_samples("someone", np.full((1, encoder.embedding_size), encoder.embedding_size ** -0.5, np.float32))
    live = Live(clip, str(path))
    try:
        live.first(nearest_is("someone"), time.monotonic(), timeout=60)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        locked = time.monotonic()
        time.sleep(7.0)
        during = live.frames_between(locked + 0.5, time.monotonic())
        holder.execute("ROLLBACK")
        holder.close()
        assert live.proc.poll() is None, "".join(live.err)[-2000:]
        assert len(during) > 20 and all(nearest_is("someone")(e) for e in during if e["faces"])
        assert any("is busy (locked by another process)" in line for line in live.err), "".join(live.err)[-2000:]
        with SQLiteStore(path, encoder.model_id) as g:
            g.add_samples("other", -np.full((1, encoder.embedding_size), encoder.embedding_size ** -0.5,
                                            np.float32))
            g.remove("someone")
        live.first(nearest_is("other"), time.monotonic(), timeout=15)       # it follows the gallery again
    finally:
        live.proc.terminate()
        live.proc.wait(timeout=30)
    assert "Traceback" not in "".join(live.err)


# == item 15 and issue 14 item 11: modes, links, and commands that must not create a gallery ====================
def test_opening_only_tightens_the_mode(tmp_path):
    path = tmp_path / "g.db"
    with SQLiteStore(path, "m") as g:
        g.add_samples("ann", np.ones((1, 4)))
    os.chmod(path, 0o400)
    with SQLiteStore(path, None, create=False) as g:
        assert g.people() == [("ann", 1)]
        assert len(g.index()) == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o400        # still write-protected
    os.chmod(path, 0o644)
    SQLiteStore(path, None).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600        # group and others lose their read bit


def test_symlinks_are_followed_only_to_an_existing_gallery(tmp_path):
    real = tmp_path / "real.db"
    with SQLiteStore(real, "m") as g:
        g.add_samples("ann", np.ones((1, 4)))
    dangling = tmp_path / "dangling.db"
    dangling.symlink_to(tmp_path / "nowhere.db")
    with pytest.raises(UserError, match="symbolic link.*does not exist"):
        SQLiteStore(dangling, "m").add_samples("x", np.ones((1, 4)))
    assert not (tmp_path / "nowhere.db").exists()               # the link's target was not created
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    to_empty = tmp_path / "to-empty.db"
    to_empty.symlink_to(empty)
    with pytest.raises(UserError, match="symbolic link.*is not a gallery"):
        SQLiteStore(to_empty, "m")
    assert empty.read_bytes() == b""                            # not taken over
    linked = tmp_path / "linked.db"
    linked.symlink_to(real)
    with SQLiteStore(linked, "m") as g:                             # a link to a real gallery is fine
        assert g.people() == [("ann", 1)]


def test_list_and_identify_do_not_create_a_missing_gallery(tmp_path, capsys):
    missing = tmp_path / "sub" / "typo.db"
    line = error_line(*run_main(capsys, "list", "--gallery", missing)[::2])
    assert "does not exist" in line and "enroll" in line
    if DATA is not None and (MODEL / "encoder.tflite").is_file():
        photo = sorted((DATA / "celebrity5" / "val" / "madonna").glob("*.jpg"))[0]
        line = error_line(*run_main(capsys, "identify", photo, "--model", MODEL, "--gallery", missing)[::2])
        assert "does not exist" in line
    assert not missing.exists() and not missing.parent.exists()


def test_a_new_gallery_object_creates_nothing_until_the_first_enrollment(tmp_path):
    path = tmp_path / "sub" / "g.db"
    with open_gallery(path, "m") as g:
        assert len(g.index()) == 0 and g.people() == []
        assert not path.parent.exists()
        g.add_samples("ann", np.ones((1, 4)))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


@needs_data
@needs_model
def test_playing_a_video_with_nobody_enrolled_creates_no_gallery(tmp_path):
    path = tmp_path / "sub" / "g.db"
    video = DATA / "videos" / CLIP
    proc = subprocess.run([sys.executable, "-m", "realtime", "--source", video, "--headless", "--max-frames", "5",
                           "--model", MODEL, "--gallery", path], cwd=ROOT, env=child_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not path.exists() and not path.parent.exists()
    proc = subprocess.run([sys.executable, "-m", "realtime", "--source", video, "--headless", "--max-frames", "90",
                           "--keys", "e@5,a,n,n,ENTER", "--model", MODEL, "--gallery", path], cwd=ROOT,
                          env=child_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with SQLiteStore(path, None, create=False) as g:                # created by the first enrollment
        assert g.people() == [("ann", load_config().enrolment.samples)]   # the e key's samples
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# == issue 26 item 3 and 12: the file at the path is followed; one index build at start ========================
def _until(test, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if test():
            return True
        time.sleep(0.02)
    return False


def test_a_live_gallery_follows_the_file_deleted_or_replaced_at_its_path(tmp_path, caplog):
    """`rm gallery.db` (README: deleting the file deletes everyone) and `mv new.db gallery.db`
    during a live run: the watcher notices the file at the path is not the one it has open, stops
    naming the deleted people and names the new file's; an enrollment after `rm` creates a new file."""
    path = tmp_path / "gallery.db"
    with SQLiteStore(path, "m") as g:
        g.add_samples("ann", np.ones((1, 4)))
    with SQLiteStore(tmp_path / "new.db", "m") as g:
        g.add_samples("bob", np.full((1, 4), 2.0))
    live = open_gallery(path, "m", watch=True)
    try:
        assert live.index().names == ("ann",)
        os.rename(tmp_path / "new.db", path)                      # mv new.db gallery.db
        assert _until(lambda: live.index().names == ("bob",)), live.index().names
        assert "was replaced by another file: following the new file" in caplog.text
        path.unlink()                                              # rm gallery.db
        assert _until(lambda: live.index().names == ()), live.index().names
        assert "was deleted: nobody is enrolled now" in caplog.text
        assert live.add_samples("cid", np.full((1, 4), 3.0)) == 1      # the live process's own enrollment
        assert live.index().names == ("cid",)                         # (the window's e key) makes a new file
    finally:
        live.close()
    with SQLiteStore(path, None, create=False) as g:
        assert g.people() == [("cid", 1)]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_live_gallery_builds_its_index_once_at_start_and_says_nothing_changed(tmp_path, caplog):
    import logging
    path = tmp_path / "g.db"
    with SQLiteStore(path, "m") as g:
        g.add_samples("ann", np.ones((1, 4)))
    with caplog.at_level(logging.DEBUG, logger="realtime.gallery"):
        live = open_gallery(path, "m", watch=True)
        time.sleep(1.0)                                       # four polls of the watcher
        live.close()
    assert caplog.text.count("gallery index rebuilt") == 1, caplog.text
    assert "changed" not in caplog.text, caplog.text


def test_a_live_gallery_matches_without_io_and_writes_in_the_background(tmp_path, caplog):
    """While another process holds the gallery locked, the frame path (index) never waits, and a
    background enrollment ends after the busy timeout with "busy", logged, the gallery as before."""
    path = tmp_path / "g.db"
    with SQLiteStore(path, "m") as g:
        g.add_samples("ann", np.ones((1, 4)))
    live = open_gallery(path, "m", watch=True)
    try:
        live._busy_timeout = 0.5
        live._close()                                        # reopened with the short wait at the next write
        assert live.add_samples_in_background("bob", np.full((1, 4), 2.0)).result(timeout=5) == 1
        assert live.index().names == ("ann", "bob")           # own write: in the index before it returns
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            pending = live.add_samples_in_background("cid", np.full((1, 4), 3.0))
            start = time.monotonic()
            for _ in range(100):
                assert live.index().names == ("ann", "bob")
            assert time.monotonic() - start < 0.1
            assert isinstance(pending.exception(timeout=5), UserError)
            assert _until(lambda: "enrollment of cid not saved" in caplog.text and "is busy" in caplog.text)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    finally:
        live.close()
    with SQLiteStore(path, None, create=False) as g:
        assert g.people() == [("ann", 1), ("bob", 1)]


def test_the_first_enrollment_makes_private_folders_whatever_the_umask(tmp_path):
    """Under `umask 000` the default gallery's missing parent folders were created 0777."""
    path = tmp_path / "share" / "realtime-faces" / "deeper" / "gallery.db"
    existing = stat.S_IMODE(os.stat(tmp_path).st_mode)
    old = os.umask(0)
    try:
        with SQLiteStore(path, "m") as g:
            g.add_samples("ann", np.ones((1, 4)))
    finally:
        os.umask(old)
    for folder in (tmp_path / "share", tmp_path / "share" / "realtime-faces", path.parent):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == existing               # an existing folder is left as it is


@pytest.fixture
def full_disk(mount_tmpfs, fill_disk):
    """A 256 KiB tmpfs filled to the last byte (root only)."""
    mnt = mount_tmpfs("256k")
    fill_disk(mnt)
    return mnt


def test_a_first_enrollment_on_a_full_disk_leaves_no_empty_gallery(full_disk, capsys):
    """Before: a traceback, and a 0-byte gallery left behind, so `list` said "empty" instead of
    "does not exist"."""
    path = full_disk / "g.db"
    with SQLiteStore(path, "m") as g:
        with pytest.raises(UserError, match="cannot be written .*full.*nothing of 'ann' was saved"):
            g.add_samples("ann", np.ones((50, 128)))
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]
    line = error_line(*run_main(capsys, "list", "--gallery", path)[::2])
    assert "does not exist" in line
    (full_disk / "filler").unlink()
    with SQLiteStore(path, "m") as g:                                   # room again: it works
        assert g.add_samples("ann", np.ones((1, 4))) == 1


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_a_gallery_that_is_a_device_is_refused_and_nothing_is_put_beside_it(capsys, device):
    before = set(os.listdir("/dev"))
    line = error_line(*run_main(capsys, "list", "--gallery", device)[::2])
    assert f"gallery {device} is a character device, not a gallery file" in line
    with pytest.raises(UserError, match="character device"):
        SQLiteStore(device, "m")
    assert set(os.listdir("/dev")) - before == set()                   # no /dev/null-journal


# == issue 24 item 8: each sample's photo, and starting a person afresh ========================================
OLD_SCHEMA = """
CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE samples (id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
                      embedding BLOB NOT NULL, model_id TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX samples_person ON samples(person_id);
"""


def old_gallery(path):
    """A gallery as made before samples recorded their photo: ann with two samples."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO people VALUES (1, 'ann', 1.0)")
    db.executemany("INSERT INTO samples(person_id, embedding, model_id, created) VALUES (1, ?, 'm', 1.0)",
                   [(np.eye(4, dtype=np.float32)[i].tobytes(),) for i in range(2)])
    db.commit()
    db.close()
    os.chmod(path, 0o600)


def test_sources_are_kept_per_person_and_replace_starts_afresh(tmp_path):
    with SQLiteStore(tmp_path / "g.db", "m") as g:
        assert g.sources("ann") == set()                                   # no gallery yet: nothing known
        assert g.add_samples("ann", np.eye(4)[:2], sources=["a" * 64, None]) == 2
        assert g.add_samples("bob", np.eye(4)[2:3], sources=["b" * 64]) == 1
        assert g.sources("ann") == {"a" * 64} and g.sources("bob") == {"b" * 64} and g.sources("cy") == set()
        with pytest.raises(ValueError, match="1 sources for 2 samples"):
            g.add_samples("ann", np.eye(4)[:2], sources=["c" * 64])
        assert g.add_samples("ann", np.eye(4)[3:], sources=["d" * 64], replace=True) == 1
        assert g.sources("ann") == {"d" * 64} and g.people() == [("ann", 1), ("bob", 1)]
        assert np.array_equal(g.index().embeddings[g.index().labels == g.index().names.index("ann")], np.eye(4)[3:])


def test_an_older_gallery_gains_the_column_at_its_first_write_in_that_transaction(tmp_path):
    path = tmp_path / "old.db"
    old_gallery(path)
    db = sqlite3.connect(path)
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON samples BEGIN SELECT RAISE(ABORT, 'refused'); END")
    db.commit()
    with SQLiteStore(path, "m") as g:
        assert g.sources("ann") == set() and g.people() == [("ann", 2)]   # read as it is, nothing changed
        assert [row[4] for row in g.dump()] == [None, None]
        with pytest.raises(UserError, match="nothing of 'ann' was saved"):
            g.add_samples("ann", np.ones((1, 4)), sources=["e" * 64])     # the write fails ...
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(samples)")]
    assert "source_sha256" not in columns                                # ... and so did the column with it
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER refuse")
    db.commit()
    with SQLiteStore(path, "m") as g:
        assert g.add_samples("ann", np.ones((1, 4)), sources=["e" * 64]) == 3
        assert g.sources("ann") == {"e" * 64}
        kept = [row for row in g.dump() if row[4] is None]
        assert [bytes(r[1]) for r in kept] == [np.eye(4, dtype=np.float32)[i].tobytes() for i in range(2)]
