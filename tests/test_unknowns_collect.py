"""The live loop keeping unknown faces (recognition.collect_unknown), on the real shared clips with
celebrity5 enrolled: one group per stranger, a second play adds none, a named group is named from then
on, storage stays bounded, and named faces are never kept."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from realtime.app import App, RunOptions
from realtime.capture import VideoSource
from realtime.config import apply_overrides, load_config
from realtime.gallery import open_gallery
from realtime.recognizer import Recognizer
from testdata import DATA, MODEL, ROOT, needs_data, needs_model

PEOPLE = ["ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"]



def clips() -> list[Path]:
    return sorted((DATA / "videos").glob("*.mp4"))


def play(recognizer, gallery, clip: Path, collect: bool = True) -> list:
    """Each face frame's largest face (a FrameResult face), the clip played headless through App.run."""
    shown = []

    def on_frame(frame, result):
        if result.faces:
            shown.append(max(result.faces, key=lambda f: f.box[2] * f.box[3]))

    app = App(recognizer, gallery, collect=collect)
    source = VideoSource(str(clip))
    try:
        app.run(source, RunOptions(on_frame=on_frame))
    finally:
        source.close()
        app.close()
    return shown


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer(MODEL)


@pytest.fixture(scope="module")
def played(tmp_path_factory, recognizer):
    """celebrity5 enrolled; the four clips played twice with collection on."""
    from realtime.api import Gallery
    path = tmp_path_factory.mktemp("unknowns") / "gallery.db"
    with Gallery(path, recognizer) as enrolled:
        for person in PEOPLE:
            enrolled.enroll(person, sorted((DATA / "celebrity5" / "train" / person).glob("*.jpg")))
    plays, groups = [], []
    with open_gallery(path, recognizer.encoder.model_id, watch=True) as gallery:
        for _ in range(2):
            plays.append({clip.name: play(recognizer, gallery, clip) for clip in clips()})
            groups.append(gallery.unknowns.groups())
        people = dict(gallery.people())
    return {"path": path, "plays": plays, "groups": groups, "people": people}


class Clock:
    def __init__(self, t=1_700_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "g.db")
    return request.getfixturevalue("db")


def collector(location, clock, **settings):
    from realtime.config import UnknownsConfig
    from realtime.unknowns.collect import Collector
    store = open_gallery(location, "m", watch=True)
    return store, Collector(store, UnknownsConfig(**{"after": 3, "save_every": 2.0, **settings}),
                            lambda n: 0.66, None, "camera 0", clock)


def offer(c, track, sharp=True, label=None, shown=None, k=0):
    """One encoding of a synthetic face: a sharp (noise) or flat crop; person ``k``'s direction."""
    rng = np.random.default_rng(int(c.clock() * 10) % 1000)
    crop = rng.integers(0, 256, (60, 60, 3), dtype=np.uint8) if sharp else np.full((60, 60, 3), 99, np.uint8)
    frame = np.zeros((240, 320, 3), np.uint8)
    c.offer(track, shown, label, np.eye(8, dtype=np.float32)[k], crop, None, 0.9, frame, (100, 60, 80, 80))


def settle(c):
    import concurrent.futures
    concurrent.futures.wait(c.writes, timeout=10)


def test_a_face_is_kept_after_a_few_unknown_encodings_and_its_last_time_seen_follows(location):
    from realtime.unknowns.collect import SEEN_EVERY
    clock = Clock()
    store, c = collector(location, clock)
    with store:
        for _ in range(2):
            offer(c, 7)
            clock.t += 0.2
        settle(c)
        assert store.unknowns.groups() == [] and c.group(7) is None       # two encodings: not yet
        offer(c, 7, label="Ann")                                            # within Ann's reach on this frame: no view
        offer(c, 7)
        settle(c)
        [group] = store.unknowns.groups()
        assert c.group(7) == group.id and group.views == 3
        start = group.first_seen
        for _ in range(2):                                                  # five sharp views: the track's cap
            clock.t += 2.0
            offer(c, 7)
        settle(c)
        assert store.unknowns.groups()[0].views == 5
        for _ in range(int(SEEN_EVERY / 5) + 2):                           # flat crops: no better view, a minute
            clock.t += 5.0
            offer(c, 7, sharp=False)
        settle(c)
        [group] = store.unknowns.groups()
        assert group.views == 5 and group.last_seen - start >= SEEN_EVERY  # still there, said without new views
        clock.t += 3.0
        offer(c, 7, sharp=False)
        c.step(set())                                                       # the face left
        settle(c)
        assert store.unknowns.groups()[0].last_seen == clock.t
        assert c.group(7) is None and 7 not in c.faces


def test_a_face_named_later_is_taken_back_and_a_named_face_never_kept(location):
    clock = Clock()
    store, c = collector(location, clock)
    with store:
        for _ in range(4):
            offer(c, 1, k=0)
            offer(c, 2, k=1)
            clock.t += 0.5
        settle(c)
        assert len(store.unknowns.groups()) == 2
        offer(c, 1, shown="Ann", label="Ann")                               # the vote named it after all
        settle(c)
        [left] = store.unknowns.groups()
        assert c.group(1) is None and left.id == c.group(2)
        for _ in range(5):
            offer(c, 1, k=0)                                                # named once: never kept again
            offer(c, 3, shown="Bob", label="Bob", k=2)                      # named from its first frame
        c.finish(wait=10)
        assert [g.id for g in store.unknowns.groups()] == [left.id]


@needs_data
@needs_model
def test_four_strangers_make_four_groups_of_one_clip_each(played):
    first, groups = played["plays"][0], played["groups"][0]
    assert len(groups) == 4
    seen = {}
    for clip, faces in first.items():
        assert all(f.name is None for f in faces), clip                   # strangers: never named
        ids = {f.unknown for f in faces if f.unknown is not None}
        assert len(ids) == 1, (clip, ids)                                  # one clip, one group
        seen[clip] = ids.pop()
        assert sum(f.unknown is not None for f in faces) >= 0.9 * len(faces)   # from its first few frames on
    assert len(set(seen.values())) == 4                                    # four clips, four groups
    by_id = {g.id: g for g in groups}
    for clip, gid in seen.items():
        assert [Path(s).name for s in by_id[gid].sources] == [clip]        # each holds its clip's person only


@needs_data
@needs_model
def test_a_second_play_adds_no_group(played):
    first, second = played["plays"]
    assert [g.id for g in played["groups"][1]] == [g.id for g in played["groups"][0]]
    for clip in first:
        assert {f.unknown for f in second[clip]} - {None} == {f.unknown for f in first[clip]} - {None}
    assert all(g.tracks >= 2 and g.views <= 20 for g in played["groups"][1])
    assert played["people"] == {p: n for p, n in played["people"].items() if p in PEOPLE}   # nobody added


@needs_data
@needs_model
def test_a_named_group_is_named_from_then_on(played, recognizer, tmp_path):
    clip = clips()[1]                                 # KatieHill
    [group] = {f.unknown for f in played["plays"][1][clip.name]} - {None}
    path = tmp_path / "gallery.db"
    path.write_bytes(played["path"].read_bytes())     # a copy: the other tests see the groups as played
    os.chmod(path, 0o600)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "realtime", "unknowns", "name", str(group), "Katie Hill", "--gallery",
                           str(path), "--model", str(MODEL)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"named unknown group {group} Katie Hill: ")
    with open_gallery(path, recognizer.encoder.model_id, watch=True) as gallery:
        assert group not in {g.id for g in gallery.unknowns.groups()}
        assert len(gallery.unknowns.groups()) == 3
        faces = play(recognizer, gallery, clip)
        named = sum(f.name == "Katie Hill" for f in faces) / len(faces)
        print(f"named group replayed: named on {named:.3f} of {len(faces)} face frames")
        assert named >= 0.95, named
        assert all(f.unknown is None for f in faces if f.name == "Katie Hill")
        others = [f for c in clips() if c != clip for f in play(recognizer, gallery, c, collect=False)]
        assert not any(f.name == "Katie Hill" for f in others)
        assert len(gallery.unknowns.groups()) == 3    # the named face's replay kept nothing


@needs_data
@needs_model
def test_collection_is_off_by_default_and_keeps_nothing(recognizer, tmp_path):
    with open_gallery(tmp_path / "g.db", recognizer.encoder.model_id) as gallery:
        faces = play(recognizer, gallery, clips()[2], collect=None)       # recognition.collect_unknown: false
        assert faces and all(f.unknown is None for f in faces)
        assert gallery.unknowns.groups() == []
    assert not (tmp_path / "g.db").exists()                                # nothing enrolled, nothing kept


@needs_data
@needs_model
def test_the_n_key_picks_the_unknown_face_under_the_mouse_else_the_largest(recognizer, tmp_path):
    from realtime.app import Face
    with open_gallery(tmp_path / "g.db", recognizer.encoder.model_id) as gallery:
        app = App(recognizer, gallery, collect=True)
        small = Face((10, 10, 50, 50), 1, None, None, 1.0, "unknown")
        large = Face((100, 10, 90, 90), 2, None, None, 1.0, "unknown")
        named = Face((300, 10, 120, 120), 3, "Ann", "Ann", 0.3, "named")
        app._faces = [small, large, named]
        app.key(ord("n"), 0.0)
        assert app._naming_track == 2 and app.keys.naming        # the largest Unknown face, not the named one
        app.key(27, 0.0)
        app.pointer = (30, 30)
        app.key(ord("n"), 0.0)
        assert app._naming_track == 1                            # the one under the mouse
        app.key(27, 0.0)
        app.pointer = (350, 50)                                  # over a named face: the largest Unknown instead
        app.key(ord("n"), 0.0)
        assert app._naming_track == 2
        app.close()
        off = App(recognizer, gallery, collect=False)
        off._faces = [small]
        off.key(ord("n"), 0.0)
        assert not off.keys.naming and "--collect-unknown" in off.message
        off.close()


@needs_data
@needs_model
def test_the_n_key_in_a_live_run_names_the_face(recognizer, tmp_path):
    """``--keys`` types into the loop as the window does: n, a name, Enter; the face is named from then on."""
    clip = clips()[0]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    path = tmp_path / "g.db"
    proc = subprocess.run([sys.executable, "-m", "realtime", "--source", str(clip), "--headless", "--collect-unknown",
                           "--keys", "n@40,A,O,C,ENTER", "--events", str(tmp_path / "ev.jsonl"), "--gallery",
                           str(path), "--model", str(MODEL)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    frames = [e for e in events if "faces" in e and e["faces"]]
    assert all(f["name"] is None for e in frames if e["frame"] <= 40 for f in e["faces"])
    named = [e["frame"] for e in frames if any(f["name"] == "AOC" for f in e["faces"])]
    assert named and named[0] < 60 and len(named) >= 0.9 * len([e for e in frames if e["frame"] >= 60])
    assert events[-1]["summary"]["enrolled"][0]["name"] == "AOC"
    with open_gallery(path, None, create=False) as gallery:
        assert dict(gallery.people())["AOC"] >= 1 and gallery.unknowns.groups() == []


@needs_data
@needs_model
def test_an_hour_of_one_stranger_stays_within_the_caps(recognizer, tmp_path):
    """One stranger in front of the camera for an hour: a looped clip (headless, fast), with the
    collector's clock running at 0.8 s a frame (4,500 frames: one hour), and the face lost for a moment at
    each loop (a new track each time, as when someone turns away). One group, within its caps; the
    gallery file grows by less than 1 MB."""
    import cv2
    from gallery_live import LoopingCapture, small_clip
    clip = small_clip(tmp_path / "clip.mp4", n=200)
    writer_path = tmp_path / "gap.mp4"                  # the clip, then 10 empty frames: the track ends each loop
    cap, writer = cv2.VideoCapture(str(clip)), cv2.VideoWriter(str(writer_path), cv2.VideoWriter_fourcc(*"mp4v"),
                                                                25.0, (320, 240))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(frame)
    for _ in range(10):
        writer.write(np.zeros((240, 320, 3), np.uint8))
    cap.release()
    writer.release()
    frames, seconds_per_frame = 4500, 0.8
    path = tmp_path / "g.db"
    config = apply_overrides(load_config(), {"detection.every": 5})
    with open_gallery(path, recognizer.encoder.model_id, watch=True) as gallery:
        gallery.add_samples("Ann", np.eye(recognizer.encoder.embedding_size, dtype=np.float32)[:3])
        size_before = path.stat().st_size
        app = App(Recognizer(MODEL, config), gallery, collect=True)
        start = 1_700_000_000.0
        app.collector.clock = lambda: start + app.frame_index * seconds_per_frame
        source = VideoSource(writer_path, opener=lambda p: LoopingCapture(p, frames // 210 + 1))
        summary = app.run(source, RunOptions(max_frames=frames))
        source.close()
        app.close()
        groups = gallery.unknowns.groups()
        views = gallery.unknowns.views(groups[0].id)
    grown = path.stat().st_size - size_before
    print(f"an hour of one stranger: {summary['frames']} frames, {groups[0].tracks} tracks, {len(views)} views kept, "
          f"gallery +{grown / 1024:.0f} KiB")
    caps = load_config().unknowns
    assert summary["frames"] == frames
    assert len(groups) == 1 and groups[0].tracks >= 15                  # a new track at each of the ~21 loops
    assert len(views) <= caps.views_per_group
    assert groups[0].last_seen - groups[0].first_seen > 0.9 * 3600
    assert grown < 1_000_000, grown


@needs_data
@needs_model
def test_kill_9_during_collection_leaves_the_gallery_readable_with_everyone_enrolled(recognizer, tmp_path):
    """The live program killed (SIGKILL) while it writes unknown faces (stored at every better view:
    unknowns.save_every 0), three times at different moments: the gallery opens, its people and
    samples are exactly as enrolled, the unknown groups written so far are listed."""
    import json
    import signal
    import sqlite3
    import threading
    import time
    from gallery_live import long_clip
    clip = long_clip(tmp_path / "long.mp4", repeats=20)
    config = tmp_path / "c.yaml"
    config.write_text("unknowns:\n  save_every: 0.0\n", encoding="utf-8")
    path = tmp_path / "g.db"
    rng = np.random.default_rng(0)
    with open_gallery(path, recognizer.encoder.model_id) as gallery:
        for name in ("Ann", "Bob"):
            gallery.add_samples(name, rng.normal(size=(3, recognizer.encoder.embedding_size)))

    def enrolled():
        with sqlite3.connect(path) as raw:
            return raw.execute("SELECT p.name, s.embedding FROM samples s JOIN people p ON p.id = s.person_id "
                               "ORDER BY s.id").fetchall()

    before = enrolled()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    for delay in (0.2, 0.9, 1.7):
        child = subprocess.Popen([sys.executable, "-m", "realtime", "--source", str(clip), "--headless",
                                  "--collect-unknown", "--config", str(config), "--events", "-", "--gallery",
                                  str(path), "--model", str(MODEL)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        kept = threading.Event()

        def watch(stream=child.stdout, kept=kept):
            for line in stream:
                if any(f.get("unknown") is not None for f in json.loads(line).get("faces", [])):
                    kept.set()
        threading.Thread(target=watch, daemon=True).start()
        assert kept.wait(60), "no unknown face was kept"
        time.sleep(delay)
        assert child.poll() is None, "the run ended before the kill: use a longer clip"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert enrolled() == before
    proc = subprocess.run([sys.executable, "-m", "realtime", "unknowns", "--gallery", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2, proc.stdout + proc.stderr   # one stranger
    proc = subprocess.run([sys.executable, "-m", "realtime", "list", "--gallery", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and {"Ann,3", "Bob,3"} <= set(proc.stdout.split()), proc.stdout + proc.stderr


@needs_data
@needs_model
def test_a_live_process_names_a_group_named_by_another_process_at_once(location, tmp_path):
    """A camera collecting (a paced, looped clip); `unknowns name` from another process while it
    runs: the camera names the face within a second or so, and keeps nothing more of it."""
    import json
    import threading
    import time
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    camera = subprocess.Popen([sys.executable, "-m", "realtime", "--source", str(clips()[2]), "--loop", "--pace",
                               "--headless", "--collect-unknown", "--events", "-", "--gallery", location, "--model",
                               str(MODEL)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    lines: list[tuple[float, dict]] = []
    threading.Thread(target=lambda: lines.extend((time.monotonic(), json.loads(line)) for line in camera.stdout),
                     daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        group = None
        while group is None and time.monotonic() < deadline and camera.poll() is None:
            group = next((f["unknown"] for _, e in list(lines) for f in e.get("faces", []) if f["unknown"]), None)
            time.sleep(0.1)
        assert group is not None, camera.stderr.read() if camera.poll() is not None else "no group kept"
        proc = subprocess.run([sys.executable, "-m", "realtime", "unknowns", "name", str(group), "Face One",
                               "--gallery", location, "--model", str(MODEL)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        named_at = time.monotonic()
        assert proc.returncode == 0, proc.stderr
        deadline = named_at + 20
        first = None
        while first is None and time.monotonic() < deadline:
            first = next((t for t, e in list(lines) if t >= named_at
                          and any(f["name"] == "Face One" for f in e.get("faces", []))), None)
            time.sleep(0.05)
        assert first is not None, "the camera never named the face"
        print(f"{'postgresql' if location.startswith('postgresql') else 'sqlite'}: named by the camera {first - named_at:.2f} s after `unknowns name` returned")
        assert first - named_at < 3.0            # the watcher's poll (0.25 s) or NOTIFY, then the vote (3 encodings)
        time.sleep(2.0)
    finally:
        camera.terminate()
        camera.wait(timeout=30)
    assert camera.returncode == 0
    with open_gallery(location, None, create=False) as gallery:
        assert gallery.unknowns.groups() == [] and dict(gallery.people())["Face One"] >= 1
