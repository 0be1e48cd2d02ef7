"""Unknown faces stored with the gallery, in both stores (a real SQLite file, a real PostgreSQL server):
groups made and joined in the storing transaction, caps, naming, forgetting, damaged rows, the live index."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import time

import numpy as np
import pytest

from realtime.errors import UserError
from realtime.gallery import open_gallery
from realtime.unknowns.quality import Caps, View

DIM = 8
CAPS = Caps(per_track=5, per_group=20, per_day=500, total=2000)


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def person(k: int) -> np.ndarray:
    return np.eye(DIM, dtype=np.float32)[k]


def views(centre, n=3, t0=1000.0, seed=0, quality=0.5):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        crop = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        out.append(View(t0 + i, quality + 0.01 * i, unit(centre + 0.05 * rng.normal(size=DIM)), crop, crop))
    return out


def fixed(_groups):
    return 0.66


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "gallery.db")
    return request.getfixturevalue("db")


def test_tracks_are_grouped_by_person_and_listed(location):
    with open_gallery(location, "m") as g:
        u = g.unknowns
        assert u.groups() == []                                      # nothing yet, no tables: no error
        a = u.record("run1:1", views(person(0)), "camera 0", CAPS, fixed)
        assert u.record("run1:2", views(person(0), seed=1, t0=2000.0), "door.mp4", CAPS, fixed) == a
        b = u.record("run1:3", views(person(1), seed=2), "camera 0", CAPS, fixed)
        assert b != a
        listed = {group.id: group for group in u.groups()}
        assert set(listed) == {a, b}
        assert (listed[a].views, listed[a].tracks) == (6, 2)
        assert (listed[a].first_seen, listed[a].last_seen) == (1000.0, 2002.0)
        assert listed[a].sources == ("camera 0", "door.mp4")
        # A track stored again (better views came) replaces its own views and stays in its group.
        assert u.record("run1:1", views(person(0), n=4, seed=3), "camera 0", CAPS, fixed) == a
        assert {g.id: g.views for g in u.groups()}[a] == 7
        assert [v.quality for v in u.views(a)] == sorted((v.quality for v in u.views(a)), reverse=True)
        assert len(g.index()) == 0                                   # nobody enrolled by any of this


def test_a_track_between_two_groups_of_one_person_merges_them(location):
    with open_gallery(location, "m") as g:
        u = g.unknowns
        left, right = unit(person(0) + 0.45 * person(1)), unit(person(0) - 0.45 * person(1))
        a = u.record("t1", views(left), "cam", CAPS, lambda n: 0.65)
        b = u.record("t2", views(right), "cam", CAPS, lambda n: 0.65)
        assert a != b                                                 # 0.82 apart; the frontal track 0.42 from each: (0.42 + 0.82) / 2 < 0.65
        assert u.record("t3", views(person(0)), "cam", CAPS, lambda n: 0.65) == min(a, b)
        [merged] = u.groups()
        assert (merged.id, merged.tracks, merged.views) == (min(a, b), 3, 9)


def test_caps_drop_the_oldest_views_and_empty_tracks_and_groups(location):
    caps = Caps(per_track=3, per_group=4, per_day=100, total=5)
    with open_gallery(location, "m") as g:
        u = g.unknowns
        a = u.record("t1", views(person(0), n=3, t0=100.0), "cam", caps, fixed)
        u.record("t2", views(person(0), n=3, t0=200.0, seed=1), "cam", caps, fixed)
        assert {x.id: x.views for x in u.groups()} == {a: 4}        # the group's cap: t1's two oldest went
        assert sorted(v.seen for v in u.views(a)) == [102.0, 200.0, 201.0, 202.0]
        b = u.record("t3", views(person(1), n=3, t0=300.0, seed=2), "cam", caps, fixed)
        # Total 5: the oldest overall go, t1 (now without views) goes, its group stays with t2.
        assert {x.id: x.views for x in u.groups()} == {a: 2, b: 3}
        assert sorted(v.seen for v in u.views(a)) == [201.0, 202.0]
        u.record("t4", views(person(2), n=3, t0=400.0, seed=3), "cam", caps, fixed)
        assert a not in {x.id for x in u.groups()}                  # all its views went: the group too


def test_naming_a_group_enrolls_its_best_views_and_removes_it(location):
    with open_gallery(location, "m") as g:
        u = g.unknowns
        a = u.record("t1", views(person(0), n=5), "cam", CAPS, fixed)
        b = u.record("t2", views(person(1), n=3, seed=1), "cam", CAPS, fixed)
        best = [v.embedding for v in u.views(a)][:3]
        assert u.name(a, "  Zoë ", limit=3) == (3, 3)
        assert [x.id for x in u.groups()] == [b]
        index = g.index()
        assert index.names == ("Zoë",) and np.allclose(index.embeddings, np.stack(best))
        g.add_samples("Ann", unit(np.ones((2, DIM))))
        assert u.name(b, "Ann", limit=10) == (3, 5)                  # an existing person gets them added
        assert u.groups() == [] and dict(g.people()) == {"Ann": 5, "Zoë": 3}
        with pytest.raises(UserError, match="no unknown group 99"):
            u.name(99, "Bob", limit=3)
        with pytest.raises(UserError, match="control character|invisible|name"):
            u.name(a, "bad\nname", limit=3)


def test_forget_by_id_all_or_age(location):
    with open_gallery(location, "m") as g:
        u = g.unknowns
        now = time.time()
        old = u.record("t1", views(person(0), t0=now - 10 * 86400), "cam", CAPS, fixed)
        new = u.record("t2", views(person(1), t0=now, seed=1), "cam", CAPS, fixed)
        third = u.record("t3", views(person(2), t0=now, seed=2), "cam", CAPS, fixed)
        assert u.forget(older_than=7 * 86400) == 1
        assert [x.id for x in u.groups()] == [new, third]
        with pytest.raises(UserError, match=f"no unknown group {old}"):
            u.forget([old])
        assert u.forget([new]) == 1 and u.forget(everything=True) == 1
        assert u.groups() == []


def test_a_named_track_is_withdrawn(location):
    with open_gallery(location, "m") as g:
        u = g.unknowns
        a = u.record("t1", views(person(0)), "cam", CAPS, fixed)
        u.record("t2", views(person(0), seed=1), "cam", CAPS, fixed)
        u.withdraw("t2")
        assert [(x.id, x.tracks, x.views) for x in u.groups()] == [(a, 1, 3)]
        u.withdraw("t1")
        u.withdraw("never-stored")
        assert u.groups() == []


def test_views_of_another_encoder_are_not_grouped_or_enrolled(location):
    with open_gallery(location, "m") as g:
        g.unknowns.record("t1", views(person(0)), "cam", CAPS, fixed)
    with open_gallery(location, "other") as g:
        u = g.unknowns
        [group] = u.groups()
        assert all(v.embedding is None for v in u.views(group.id))
        assert u.record("t2", views(person(0)), "cam", CAPS, fixed) != group.id
        with pytest.raises(UserError, match="no views this encoder made"):
            u.name(group.id, "Ann", limit=5)


def test_damaged_rows_are_named_and_left_out(tmp_path, caplog):
    path = tmp_path / "gallery.db"
    with open_gallery(path, "m") as g:
        a = g.unknowns.record("t1", views(person(0)), "cam", CAPS, fixed)
    with sqlite3.connect(path) as raw:
        (bad,) = raw.execute("SELECT MIN(id) FROM unknown_views").fetchone()
        raw.execute("UPDATE unknown_views SET embedding = ? WHERE id = ?", (b"\x00\x00\xc0\x7f" * DIM, bad))   # NaNs
        raw.execute("UPDATE unknown_groups SET sources = 'not json'")
        raw.execute("UPDATE unknown_tracks SET embedding = x'0102' WHERE key = 't1'")
    with open_gallery(path, "m") as g:
        u = g.unknowns
        [group] = u.groups()
        assert group.sources == () and "sources are damaged" in caplog.text
        got = u.views(a)
        assert sum(v.embedding is None for v in got) == 1 and f"view {bad} is damaged" in caplog.text
        assert u.record("t2", views(person(0), seed=1), "cam", CAPS, fixed) != a   # the damaged track is not compared
        assert "unknown track" in caplog.text and "left out of grouping" in caplog.text
        assert u.name(a, "Ann", limit=5) == (2, 2)                   # the two sound views only


def test_a_gallery_from_before_gets_the_tables_and_stays_owner_only(tmp_path):
    path = tmp_path / "gallery.db"
    with open_gallery(path, "m") as g:
        g.add_samples("Ann", unit(np.ones((1, DIM))))
    os.chmod(path, 0o644)
    with open_gallery(path, "m") as g:
        g.unknowns.record("t1", views(person(0)), "cam", CAPS, fixed)
        assert dict(g.people()) == {"Ann": 1}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with sqlite3.connect(path) as raw:
        assert {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= {
            "people", "samples", "unknown_groups", "unknown_tracks", "unknown_views"}
        assert json.loads(raw.execute("SELECT sources FROM unknown_groups").fetchone()[0]) == ["cam"]


def test_a_live_index_is_kept_when_only_unknown_faces_change(location):
    """A write to the unknown tables (by this process's writer or another process) changes the
    store's change token; the live loop's index must stay the same object, or every face's vote
    would be reset; a naming is a new index, seen at once."""
    with open_gallery(location, "m") as writer, open_gallery(location, "m", watch=True) as live:
        writer.add_samples("Ann", unit(np.ones((1, DIM))))
        deadline = time.time() + 10
        while len(live.index()) != 1 and time.time() < deadline:
            time.sleep(0.05)
        index = live.index()
        version = writer._version()
        a = writer.unknowns.record("t1", views(person(0)), "cam", CAPS, fixed)
        if str(location).startswith("postgresql"):                   # PostgreSQL: no counter raised, nobody notified
            assert writer._version() == version
        time.sleep(1.0)                                              # the watcher polls every 0.25 s
        assert live.index() is index
        writer.unknowns.name(a, "Bob", limit=5)
        while "Bob" not in live.index().names and time.time() < deadline:
            time.sleep(0.05)
        assert set(live.index().names) == {"Ann", "Bob"}


def test_two_cameras_recording_one_stranger_at_once_make_one_group(location):
    """Each store grouping inside its own write transaction: the second writer waits for the first and
    joins its group, whichever commits first."""
    import threading
    with open_gallery(location, "m") as first:
        first.add_samples("Ann", unit(np.ones((1, DIM))))            # the tables exist before the race
    errors = []

    def camera(k):
        try:
            with open_gallery(location, "m") as g:
                for i in range(6):
                    g.unknowns.record(f"cam{k}:{i}", views(person(3), seed=10 * k + i), f"camera {k}", CAPS, fixed)
        except Exception as err:   # noqa: BLE001 (reported below)
            errors.append(err)
    threads = [threading.Thread(target=camera, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with open_gallery(location, "m") as g:
        [group] = g.unknowns.groups()
        assert group.tracks == 12 and group.views == 20 and set(group.sources) == {"camera 0", "camera 1"}


def test_a_track_still_there_moves_its_last_time_seen_forward_only(location):
    with open_gallery(location, "m") as g:
        u = g.unknowns
        a = u.record("t1", views(person(0), t0=100.0), "cam", CAPS, fixed, seen=(90.0, 102.0))
        assert (u.groups()[0].first_seen, u.groups()[0].last_seen) == (90.0, 102.0)
        u.seen("t1", 500.0)
        u.seen("t1", 400.0)                                            # late news never moves it back
        u.seen("gone", 900.0)                                          # a track not stored: nothing
        assert [(x.id, x.last_seen) for x in u.groups()] == [(a, 500.0)]
