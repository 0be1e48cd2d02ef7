"""The real window under Xvfb, driven with xdotool: names typed exactly (fast, with capitals,
apostrophes and accents), an application window (no Qt toolbar), PAUSED, a file's last frame
held until a key; and SIGTERM/SIGHUP ending a run with a playable recording and a summary.

Screenshots of the screen are saved in each test's tmp folder (and copied to
``$REALTIME_SCREENSHOTS`` when it is set).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.inputs import read_frames
from commands import child_env, cli
from testdata import DATA, MODEL, ROOT, needs_data, needs_model

CLIP = "sadtalker_WDA_KatieHill_000.mp4"    # 200 frames, 512x512, 25 fps, one face
NAMES = ["Katie Hill", "O'Brien", "Zoë"]

pytestmark = [needs_data, needs_model]


class LiveApp:
    """``python -m realtime ARGS`` on a display, its log read as it comes."""

    def __init__(self, tmp_path, display, *args):
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), DISPLAY=display or "", TF_CPP_MIN_LOG_LEVEL="2")
        if display is None:
            self.env.pop("DISPLAY")
        self.tmp_path, self.display = tmp_path, display
        self.proc = subprocess.Popen([sys.executable, "-m", "realtime", "--model", str(MODEL),
                                      "--gallery", str(tmp_path / "g.db"), *map(str, args)],
                                     cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self.reader.start()
        self.window = ""

    @property
    def log(self):
        return "".join(self.lines)

    def wait_for(self, text, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline and self.proc.poll() is None and text not in self.log:
            time.sleep(0.1)
        return text in self.log

    def xdotool(self, *args):
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=30).stdout

    def find_window(self):
        deadline = time.time() + 60
        while not self.window and time.time() < deadline and self.proc.poll() is None:
            time.sleep(0.3)
            found = self.xdotool("search", "--name", "realtime faces").split()
            self.window = found[0] if found else ""
        assert self.window, "the window never appeared: " + self.log
        return self.window

    def keys(self, *names):
        self.xdotool("windowfocus", "--sync", self.window)
        self.xdotool("key", "--delay", "80", *names)

    def type(self, text):
        """xdotool's default typing speed (12 ms a key): faster than a frame, so keys pile up."""
        self.xdotool("windowfocus", "--sync", self.window)
        self.xdotool("type", text)

    def prove_keyboard(self):
        """A just-mapped window can miss keys on a loaded machine: ``+`` (which logs the new
        threshold, ``threshold 0.776`` and nothing after it) proves the window has the keyboard."""
        for _ in range(10):
            self.keys("plus")
            deadline = time.time() + 1.0
            while time.time() < deadline and self.proc.poll() is None:
                if any(re.search(r"realtime\.app: threshold [0-9.]+$", line.rstrip()) for line in self.lines):
                    return
                time.sleep(0.1)
        raise AssertionError("the window never took the keyboard: " + self.log)

    def screenshot(self, name):
        """The whole screen (PNG) in the test's tmp folder, and in $REALTIME_SCREENSHOTS if set;
        returns the window's part of it."""
        from PIL import ImageGrab
        path = self.tmp_path / f"{name}.png"
        ImageGrab.grab(xdisplay=self.display).save(path)
        keep = os.environ.get("REALTIME_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        geometry = self.xdotool("getwindowgeometry", self.window)
        x, y = map(int, re.search(r"Position: (-?\d+),(-?\d+)", geometry).groups())
        w, h = map(int, re.search(r"Geometry: (\d+)x(\d+)", geometry).groups())
        return cv2.imread(str(path))[max(y, 0):y + h, max(x, 0):x + w]

    def screenshot_until(self, name, shows, seconds=10):
        """A screenshot once ``shows(window image)`` holds (Qt paints a moment after the frame is
        given, later on a loaded machine), or the last one tried."""
        deadline = time.time() + seconds
        while True:
            image = self.screenshot(name)
            if shows(image) or time.time() > deadline:
                return image
            time.sleep(0.5)

    def finish(self, timeout=60):
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        assert "Traceback" not in self.log, self.log
        return self.proc.returncode


def yellow_pixels(image):
    """Pixels of the HUD's banner colour (BGR 0, 220, 255)."""
    return int(np.all(np.abs(image.astype(int) - (0, 220, 255)) < 40, axis=2).sum())


def test_names_typed_fast_arrive_exactly_in_an_application_window(tmp_path, xvfb_display):
    app = LiveApp(tmp_path, xvfb_display, "--source", DATA / "videos" / CLIP, "--loop")
    window = app.find_window()
    # WINDOW_GUI_NORMAL: the window is the frame, with no Qt toolbar above it or status bar below.
    deadline = time.time() + 30        # the window is made before the first frame sizes it
    while "Geometry: 512x512" not in (geometry := app.xdotool("getwindowgeometry", window)) and time.time() < deadline:
        time.sleep(0.2)
    assert "Geometry: 512x512" in geometry, geometry
    app.prove_keyboard()
    for name in NAMES:
        app.keys("e")
        app.type(name)
        if name == NAMES[-1]:
            time.sleep(0.5)
            app.screenshot("window-typing-unicode-name")
        app.keys("Return")
        assert app.wait_for(f"enrolled {name}: 5 samples", 20), app.log
    time.sleep(0.8)                                           # the named face, boxed in green
    app.screenshot("window-recognised")
    app.keys("space")
    paused = app.screenshot_until("window-paused", lambda image: yellow_pixels(image[380:]) > 300)
    app.keys("space")
    time.sleep(0.5)
    playing = app.screenshot_until("window-playing", lambda image: yellow_pixels(image[380:]) < 100)
    assert paused.shape == playing.shape == (512, 512, 3), geometry
    assert yellow_pixels(paused[380:]) > 300 + yellow_pixels(playing[380:])     # PAUSED, above the key help
    app.keys("q")
    assert app.finish() == 0, app.log
    listed = subprocess.run([sys.executable, "-m", "realtime", "list", "--gallery", tmp_path / "g.db"], cwd=ROOT,
                            env=dict(app.env, DISPLAY=""), capture_output=True, text=True, timeout=60)
    header, *rows = listed.stdout.splitlines()
    assert header == "name,samples" and sorted(rows) == sorted(f"{name},5" for name in NAMES), listed      # exactly as typed


@needs_data
@needs_model
def test_real_window_under_xvfb_quits_on_q(tmp_path, xvfb_display):
    display = xvfb_display
    env = dict(os.environ, PYTHONPATH=str(ROOT), DISPLAY=display)
    shot = tmp_path / "window.png"
    app = subprocess.Popen([sys.executable, "-m", "realtime", "--source", str(DATA / "videos" / CLIP),
                            "--model", str(MODEL), "--gallery", str(tmp_path / "g.db"), "--snapshot", str(shot)],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    window = ""
    deadline = time.time() + 40
    while not window and time.time() < deadline and app.poll() is None:
        time.sleep(0.5)
        window = subprocess.run(["xdotool", "search", "--name", "realtime faces"], env=env,
                                capture_output=True, text=True).stdout.split()
        window = window[0] if window else ""
    assert window, "the window never appeared: " + (app.stderr.read() if app.poll() is not None else "")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(app.stderr), daemon=True)
    reader.start()

    def wait_for(text, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline and app.poll() is None:
            if any(text in l for l in lines):
                return True
            time.sleep(0.1)
        return any(text in l for l in lines)

    def keys(*names):
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, timeout=10)
        subprocess.run(["xdotool", "key", "--delay", "80", *names], env=env, timeout=10)

    # A just-mapped window can miss keys on a loaded machine: "+" (which logs the new threshold)
    # proves the window has the keyboard before the enrollment is typed.
    for _ in range(10):
        keys("plus")
        if wait_for("realtime.app: threshold", 1.0):
            break
    # Typed into the window itself: e, a name, Enter; then q once the samples are taken.
    keys("e", "b", "o", "Return")
    wait_for("enrolled bo", 5.0)
    subprocess.run(["xdotool", "key", "q"], env=env, timeout=10)
    app.wait(timeout=30)
    reader.join(timeout=10)
    err = "".join(lines)
    assert app.returncode == 0, err
    assert "enrolled bo: 5 samples" in err
    assert cli("list", "--gallery", tmp_path / "g.db").stdout.strip() == "name,samples\nbo,5"
    frames = [int(l.split()[2]) for l in err.splitlines() if l.startswith("INFO realtime.app:") and "frames" in l]
    assert frames and 0 < frames[-1] < 200, err      # q ended it, not the end of the clip
    image = cv2.imread(str(shot))
    assert image is not None and image.shape == (512, 512, 3)
    keep = os.environ.get("REALTIME_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


@needs_data
@needs_model
def test_ctrl_c_with_a_window_closes_it_finishes_the_recording_and_exits_0(tmp_path, xvfb_display):
    display = xvfb_display
    env = dict(child_env(), DISPLAY=display)
    out, events = tmp_path / "out.mp4", tmp_path / "ev.jsonl"
    app = subprocess.Popen([sys.executable, "-m", "realtime", "--source", str(DATA / "videos" / CLIP),
                            "--record", str(out), "--events", str(events), "--model", str(MODEL),
                            "--gallery", str(tmp_path / "g.db")],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def windows():
        return subprocess.run(["xdotool", "search", "--name", "realtime faces"], env=env,
                              capture_output=True, text=True).stdout.split()

    deadline = time.time() + 40
    while not windows() and time.time() < deadline and app.poll() is None:
        time.sleep(0.3)
    assert windows(), "the window never appeared"
    time.sleep(1.0)
    app.send_signal(signal.SIGINT)
    _, err = app.communicate(timeout=30)
    assert app.returncode == 0 and "Traceback" not in err, err
    assert not windows()
    summary = json.loads(events.read_text(encoding="utf-8").splitlines()[-1])["summary"]
    assert summary["interrupted"] and 0 < summary["frames"] < 200      # Ctrl-C ended it, not the clip
    assert len(read_frames(out, 10**6)) == summary["frames"]


def short_clip(path, frames=20):
    cap, writer = cv2.VideoCapture(str(DATA / "videos" / CLIP)), None
    for _ in range(frames):
        frame = cap.read()[1]
        writer = writer or cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    return path


def test_loop_replays_a_file(tmp_path):
    events = tmp_path / "ev.jsonl"
    app = LiveApp(tmp_path, None, "--source", short_clip(tmp_path / "short.mp4"), "--loop", "--headless",
                  "--max-frames", 50, "--events", events)
    assert app.finish(120) == 0, app.log
    rows = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    assert rows[-1]["summary"]["frames"] == 50 and app.log.count("playing it again (--loop)") == 2
    assert [r["frame"] for r in rows[:-1]] == list(range(50))
    assert all(len(r["faces"]) == 1 for r in rows[20:-1])          # the replays are processed like the first pass


def test_a_file_that_ends_stays_on_its_last_frame_until_a_key(tmp_path, xvfb_display):
    clip = short_clip(tmp_path / "short.mp4")
    out, events = tmp_path / "out.mp4", tmp_path / "ev.jsonl"
    app = LiveApp(tmp_path, xvfb_display, "--source", clip, "--record", out, "--events", events)
    app.find_window()
    assert app.wait_for("press any key", 60), app.log
    time.sleep(3.0)
    assert app.proc.poll() is None                            # still open, on the last frame
    held = app.screenshot_until("window-ended", lambda image: yellow_pixels(image) > 300)
    assert yellow_pixels(held) > 300                          # the end-of-video banner
    app.keys("x")
    assert app.finish(30) == 0, app.log
    summary = json.loads(events.read_text(encoding="utf-8").splitlines()[-1])["summary"]
    assert summary["frames"] == 20 and not summary["interrupted"]
    # 20 frames at the clip's 25 fps play in 0.8 s: the 3 s and more on the last frame are not the run's
    assert summary["seconds"] < 3.0 and summary["fps"] == pytest.approx(20 / summary["seconds"], rel=0.02)


@pytest.mark.parametrize("signame, with_window", [("SIGTERM", False), ("SIGHUP", False), ("SIGTERM", True)])
def test_sigterm_and_sighup_end_the_run_like_q(tmp_path, request, signame, with_window):
    """Exit 0 (as q and Ctrl-C), the events summary written, the recording complete and playable with
    every frame processed, and no temporary file left beside it."""
    display = request.getfixturevalue("xvfb_display") if with_window else None
    out, events = tmp_path / "out.mp4", tmp_path / "ev.jsonl"
    app = LiveApp(tmp_path, display, "--source", DATA / "videos" / CLIP, "--loop", "--record", out,
                  "--events", events, *([] if with_window else ["--headless"]))
    if with_window:
        app.find_window()
    assert app.wait_for("realtime.capture: source", 60), app.log
    time.sleep(3.0)
    app.proc.send_signal(getattr(signal, signame))
    assert app.finish(60) == 0, app.log
    assert f"stopped by {signame}" in app.log
    summary = json.loads(events.read_text(encoding="utf-8").splitlines()[-1])["summary"]
    assert summary["interrupted"] and summary["frames"] > 0
    cap = cv2.VideoCapture(str(out))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == summary["frames"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "g.db") == ["ev.jsonl", "out.mp4"]


def two_strangers(path, frames=120):
    """Two shared clips side by side (320 px each): two Unknown faces in one window."""
    left, right = (cv2.VideoCapture(str(DATA / "videos" / name))
                   for name in ("sadtalker_WDA_AlexandriaOcasioCortez_000.mp4", "video-retalking_face_1.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 320))
    for _ in range(frames):
        (ok_a, a), (ok_b, b) = left.read(), right.read()
        if not (ok_a and ok_b):
            break
        writer.write(np.hstack([cv2.resize(a, (320, 320), interpolation=cv2.INTER_AREA),
                                cv2.resize(b, (320, 320), interpolation=cv2.INTER_AREA)]))
    writer.release()
    return path


def test_n_names_the_unknown_face_under_the_mouse(tmp_path, xvfb_display):
    """Two strangers kept (--collect-unknown); the mouse over the right one, n, a name, Enter: the right
    one is named from then on, the left one stays Unknown."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), DISPLAY=xvfb_display, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "--source", two_strangers(tmp_path / "two.mp4"),
                             "--loop", "--collect-unknown", "--events", "-", "--model", str(MODEL), "--gallery",
                             str(tmp_path / "g.db")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    events, log = [], []
    threading.Thread(target=lambda: events.extend(json.loads(line) for line in proc.stdout), daemon=True).start()
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()

    def xdotool(*args):
        return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=30).stdout

    def faces_kept():
        return [e for e in list(events) if len(e.get("faces", [])) == 2
                and all(f["unknown"] is not None for f in e["faces"])]
    deadline = time.time() + 60
    while not faces_kept() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert faces_kept(), "".join(log)
    window = xdotool("search", "--name", "realtime faces").split()[0]
    xdotool("mousemove", "--window", window, "480", "160")   # over the right face (the smaller: not the default pick)
    time.sleep(0.5)
    xdotool("windowfocus", "--sync", window)
    xdotool("key", "--delay", "80", "n")
    xdotool("type", "Righty")
    xdotool("key", "Return")
    deadline = time.time() + 30
    while not any("named an unknown face Righty" in line for line in log) and time.time() < deadline:
        time.sleep(0.2)
    assert any("named an unknown face Righty" in line for line in log), "".join(log)
    time.sleep(2.0)
    xdotool("windowfocus", "--sync", window)
    xdotool("key", "q")
    proc.wait(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in "".join(log), "".join(log)
    last = [e for e in events if len(e.get("faces", [])) == 2][-20:]
    for e in last:
        left, right = sorted(e["faces"], key=lambda f: f["box"][0])
        assert right["name"] == "Righty" and left["name"] is None and left["unknown"] is not None, e
    listed = subprocess.run([sys.executable, "-m", "realtime", "unknowns", "--gallery", tmp_path / "g.db"], cwd=ROOT,
                            env=dict(env, DISPLAY=""), capture_output=True, text=True, timeout=60)
    assert len(listed.stdout.splitlines()) == 2, listed          # the header and the left face's group
