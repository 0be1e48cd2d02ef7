"""The live program end to end through its command line (subprocesses; a video stands in for
the camera). Accuracy tests use the shipped encoder in ``models/`` and skip without it;
``REALTIME_TEST_MODEL`` points them at another model folder while one is being trained."""
import json
import os
import subprocess
import sys
import threading
import time

import cv2
import pytest

from benchmarks.inputs import photo_video
from commands import cli, events_of, one_line_error
from testdata import DATA, MODEL, ROOT, needs_data

PEOPLE = ["ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"]
STRANGER = "mindy_kaling"
CLIP = "sadtalker_WDA_KatieHill_000.mp4"

needs_model = pytest.mark.skipif(not (MODEL / "encoder.tflite").is_file(),
                                 reason=f"no trained encoder in {MODEL} (run `python -m training` first)")


# -- no TensorFlow, bad inputs -----------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--help"], ["list", "--gallery", "{tmp}/g.db"], ["enroll", "--help"],
                                  ["unknowns", "--gallery", "{tmp}/g.db"]])
def test_realtime_never_imports_tensorflow(argv, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = ("import sys, runpy\nsys.argv = ['realtime'] + %r\n"
            "try:\n    runpy.run_module('realtime', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules and 'training' not in sys.modules\n"
            "print('clean')" % argv)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0 and proc.stdout.strip().endswith("clean"), proc.stderr


@needs_data
@needs_model
def test_a_live_headless_run_never_imports_tensorflow(tmp_path):
    argv = ["--source", str(DATA / "videos" / CLIP), "--headless", "--max-frames", "3", "--model", str(MODEL),
            "--gallery", str(tmp_path / "g.db"), "--collect-unknown"]
    code = ("import sys, runpy\nsys.argv = ['realtime'] + %r\n"
            "try:\n    runpy.run_module('realtime', run_name='__main__')\nexcept SystemExit as e:\n    assert not e.code\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\nprint('clean')" % argv)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0 and proc.stdout.strip().endswith("clean"), proc.stderr


def test_missing_video_file_is_one_line_error(tmp_path):
    assert "not found" in one_line_error(cli("--source", tmp_path / "nope.mp4", "--headless"))
    (tmp_path / "fake.mp4").write_bytes(b"not a video at all")
    assert "not a video" in one_line_error(cli("--source", tmp_path / "fake.mp4", "--headless"))


def test_window_without_a_display_is_one_line_error(tmp_path):
    assert "--headless" in one_line_error(cli("--source", "0", "--gallery", tmp_path / "g.db"))


def test_missing_camera_is_one_line_error(tmp_path):
    assert "camera 57" in one_line_error(cli("--source", "57", "--headless", "--gallery", tmp_path / "g.db"))


@needs_data
def test_missing_or_malformed_model_is_one_line_error(tmp_path):
    photo = next((DATA / "celebrity5/val/madonna").glob("*.jpg"))
    assert "not found" in one_line_error(cli("identify", photo, "--model", tmp_path / "none", "--gallery", tmp_path / "g.db"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "encoder.json").write_text("{not json")
    assert "encoder.json" in one_line_error(cli("identify", photo, "--model", bad, "--gallery", tmp_path / "g.db"))
    (bad / "encoder.json").write_text(json.dumps({"format": 1, "input_size": 60, "embedding_size": 128}))
    assert "threshold" in one_line_error(cli("identify", photo, "--model", bad, "--gallery", tmp_path / "g.db"))
    clip = DATA / "videos" / CLIP
    assert "model" in one_line_error(cli("--source", clip, "--headless", "--model", tmp_path / "none",
                                         "--gallery", tmp_path / "g.db"))


def test_unknown_person_cannot_be_removed(tmp_path):
    assert "does not exist" in one_line_error(cli("remove", "ghost", "--gallery", tmp_path / "g.db"))


@needs_data
@needs_model
def test_headless_run_names_enrolled_people_and_not_the_stranger(tmp_path):
    gallery = tmp_path / "g.db"
    for person in PEOPLE:
        if person != STRANGER:
            proc = cli("enroll", person, DATA / "celebrity5/train" / person, "--model", MODEL, "--gallery", gallery)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.startswith(f"enrolled {person}:")
    listed = cli("list", "--gallery", gallery).stdout.split()
    assert listed[0] == "name,samples" and sorted(l.split(",")[0] for l in listed[1:]) == sorted(set(PEOPLE) - {STRANGER})
    video, truth = photo_video(tmp_path, DATA)   # each val photo held 6 frames
    events = tmp_path / "events.jsonl"
    proc = cli("--source", video, "--headless", "--events", events, "--model", MODEL, "--gallery", gallery)
    assert proc.returncode == 0, proc.stderr
    rows, summary = events_of(events)
    assert len(rows) == len(truth) == summary["frames"]
    right = known = stranger_null = stranger = 0
    for row, person in zip(rows, truth):
        if not row["faces"]:
            continue
        face = max(row["faces"], key=lambda f: f["box"][2] * f["box"][3])
        if person == STRANGER:
            stranger += 1
            stranger_null += face["name"] is None
        else:
            known += 1
            right += face["name"] == person
    face_frames = known + stranger
    assert face_frames >= 0.7 * len(truth), "Haar should find a face on most frames"
    print(f"\nright name on {right}/{known} enrolled face frames, null on {stranger_null}/{stranger} "
          f"stranger frames, {summary['fps']} fps")
    # The threshold protects a 100-person gallery from strangers (1% of their photos named), and the
    # shipped encoder names enrolled people's other photos at it: 99.5% of the benchmark's version of
    # this video (docs/RESULTS.md; here 4 people are enrolled and photos are held 6 frames, not 8). A
    # borderline match waits for the vote, so a few frames may stay unnamed.
    assert stranger_null / stranger >= 0.95
    assert right / known >= 0.9


# -- key enrollment on a real clip, restart, record ----------------------------------------------
@needs_data
@needs_model
def test_key_enrollment_recognises_from_then_on_and_survives_restart(tmp_path):
    gallery, events = tmp_path / "g.db", tmp_path / "ev.jsonl"
    clip = DATA / "videos" / CLIP
    keys = "e@5,K,a,t,i,e,SPACE,\u00e9,ENTER"     # Enter at frame 13; name "Katie é"
    proc = cli("--source", clip, "--headless", "--events", events, "--max-frames", 130, "--keys", keys,
               "--model", MODEL, "--gallery", gallery)
    assert proc.returncode == 0, proc.stderr
    rows, summary = events_of(events)
    assert summary["enrolled"] == [{"name": "Katie \u00e9", "samples": 5}]   # 5 samples over 2 s: frames 13-63
    before = [r for r in rows if r["frame"] < 13 and r["faces"]]
    assert before and all(f["name"] is None for r in before for f in r["faces"])
    later = [r for r in rows if r["frame"] >= 70 and r["faces"]]
    named = sum(any(f["name"] == "Katie \u00e9" for f in r["faces"]) for r in later)
    assert named >= 0.8 * len(later)
    assert cli("list", "--gallery", gallery).stdout.strip() == "name,samples\nKatie \u00e9,5"
    # After a restart the person is known from the first frame.
    proc = cli("--source", clip, "--headless", "--events", events, "--max-frames", 20, "--model", MODEL,
               "--gallery", gallery)
    assert proc.returncode == 0, proc.stderr
    rows, _ = events_of(events)
    assert len(rows) == 20                                       # this run's events, not the first run's
    assert sum(any(f["name"] == "Katie \u00e9" for f in r["faces"]) for r in rows) >= 0.8 * len(rows)
    # Enrolling the same name again adds samples.
    proc = cli("--source", clip, "--headless", "--max-frames", 80, "--keys", "e@2,K,a,t,i,e,SPACE,\u00e9,ENTER",
               "--model", MODEL, "--gallery", gallery)
    assert proc.returncode == 0, proc.stderr
    assert cli("list", "--gallery", gallery).stdout.strip() == "name,samples\nKatie \u00e9,10"


@needs_data
@needs_model
def test_record_writes_a_playable_file_with_every_frame(tmp_path):
    clip = DATA / "videos" / CLIP
    out = tmp_path / "out.mp4"
    proc = cli("--source", clip, "--headless", "--record", out, "--max-frames", 30, "--model", MODEL,
               "--gallery", tmp_path / "g.db")
    assert proc.returncode == 0, proc.stderr
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame.shape)
    assert len(frames) == 30 and set(frames) == {(512, 512, 3)}
    assert "folder" in one_line_error(cli("--source", clip, "--headless", "--record", tmp_path / "no" / "x.mp4",
                                          "--model", MODEL, "--gallery", tmp_path / "g.db"))


@needs_data
@needs_model
def test_ctrl_c_finishes_the_recording_and_exits_0(tmp_path):
    clip = DATA / "videos" / CLIP
    out = tmp_path / "out.mp4"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "--source", str(clip), "--headless", "--record",
                             str(out), "--events", str(tmp_path / "ev.jsonl"), "--model", str(MODEL),
                             "--gallery", str(tmp_path / "g.db")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = tmp_path / "ev.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (events.exists() and events.stat().st_size > 0):
        time.sleep(0.2)   # wait until the loop is running
    time.sleep(0.5)
    proc.send_signal(2)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    _, summary = events_of(tmp_path / "ev.jsonl")
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == summary["frames"] > 0


@needs_data
@needs_model
def test_pace_plays_a_file_headless_at_its_own_frame_rate(tmp_path):
    """--pace: 25 frames of a 25 fps clip take a second, as a camera would deliver them (not as fast as possible)."""
    events = tmp_path / "ev.jsonl"
    proc = cli("--source", DATA / "videos" / CLIP, "--headless", "--pace", "--max-frames", 25, "--events", events,
               "--model", MODEL, "--gallery", tmp_path / "g.db")
    assert proc.returncode == 0, proc.stderr
    _, summary = events_of(events)
    assert summary["frames"] == 25 and summary["seconds"] >= 0.9 and summary["fps"] <= 27.5


def test_a_gallery_url_with_a_password_in_the_config_is_not_printed_by_help_nor_breaks_commands(
        tmp_path, monkeypatch, capsys):
    """A `$`, `@` and `/` in the password: --help shows the URL masked (not made into a path), and a
    command fails on the unreachable server with one line that never holds the password."""
    import realtime.__main__ as cli_main
    from realtime.config import apply_overrides, load_config
    from pgserver import free_port
    url = f"postgresql://cam:Se$cr@t/PW9@127.0.0.1:{free_port()}/faces"
    config = apply_overrides(load_config(), {"recognition.gallery": url})
    monkeypatch.setattr(cli_main, "_defaults", lambda: config)   # as if config.yaml held it
    for argv in (["--help"], ["list", "--help"], ["--gallery", "x.db", "--help"]):
        with pytest.raises(SystemExit) as done:
            cli_main.main(argv)
        out = capsys.readouterr().out
        assert done.value.code == 0 and "cam:***@127.0.0.1" in out and "PW9" not in out and "cr@t" not in out, out
    settings = tmp_path / "config.yaml"
    settings.write_text((ROOT / "config.yaml").read_text().replace(
        "gallery: ~/.local/share/realtime-faces/gallery.db", f"gallery: '{url}'"))
    assert f"'{url}'" in settings.read_text()
    for argv in (["-v", "--config", str(settings), "list"], ["list", "--config", str(settings), "-v"]):
        code = cli_main.main(argv)
        err = capsys.readouterr().err
        assert code == 2 and "cannot reach the PostgreSQL server" in err and "Traceback" not in err, err
        assert "PW9" not in err and "Se$" not in err and "cam:***@127.0.0.1" in err, err


@needs_model
def test_sigterm_while_a_stream_reconnects_stops_at_once_and_finishes_the_files(tmp_path):
    """A real MJPEG camera goes away; while the live program waits to reconnect (each attempt up to
    the 10 s open timeout), SIGTERM (`docker stop`) ends it at once: exit 0, the recording playable
    and renamed into place, the events file complete with `interrupted: true`."""
    from gallery_live import seconds_to_stop
    from mjpeg import MJPEGServer
    server = MJPEGServer()
    out, events = tmp_path / "out.mp4", tmp_path / "ev.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "--source", server.url, "--headless", "--record",
                             str(out), "--events", str(events), "--model", str(MODEL), "--gallery",
                             str(tmp_path / "g.db")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()

    def wait_for(words, timeout=60):
        end = time.time() + timeout
        while time.time() < end and not any(words in line for line in err):
            assert proc.poll() is None, "".join(err)
            time.sleep(0.05)
        assert any(words in line for line in err), "".join(err)
    try:
        wait_for("source stream http://127.0.0.1")
        time.sleep(1.0)                                     # frames recorded
        server.go_away()
        wait_for("reopening (1/3)")
        time.sleep(1.5)                                     # into the first reopening's wait
        assert proc.poll() is None
        took = seconds_to_stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
    text = "".join(err)
    assert proc.returncode == 0 and "Traceback" not in text, text
    assert took < 3.0, took                                  # before: all three retries, 33 s, then exit 2
    rows, summary = events_of(events)
    assert summary["interrupted"] is True and summary["frames"] == len(rows) > 0
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == summary["frames"]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]      # no temp file left behind


@needs_model
def test_loop_with_its_source_deleted_keeps_the_events_and_the_recording(tmp_path):
    """--loop, and the file is deleted mid-run: the run used to end with the whole events file
    discarded; now it stops where it could not go on, keeps the events (with their summary) and the
    recording, and says so in one line (exit 2)."""
    import numpy as np
    clip, events, out = tmp_path / "clip.avi", tmp_path / "ev.jsonl", tmp_path / "out.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (96, 64))
    for i in range(15):
        writer.write(np.full((64, 96, 3), 10 * i, np.uint8))
    writer.release()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "--source", str(clip), "--headless", "--loop", "--pace",
                             "--events", str(events), "--record", str(out), "--model", str(MODEL), "--gallery",
                             str(tmp_path / "g.db")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()
    end = time.time() + 60
    while not any("playing it again" in line for line in err) and time.time() < end and proc.poll() is None:
        time.sleep(0.02)
    clip.unlink()                                             # deleted during the second pass
    proc.wait(timeout=60)
    text = "".join(err)
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in text, text
    assert "--loop" in lines[0] and "could not be played again" in lines[0] and "not found" in lines[0], lines[0]
    rows, summary = events_of(events)
    assert summary["frames"] == len(rows) == 30                 # both passes, nothing discarded
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 30
