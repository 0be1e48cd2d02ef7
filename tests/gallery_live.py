"""Helpers for tests of the live program: clips made from the shared one, a video file that plays over
and over, and live headless processes on a shared gallery (SQLite or PostgreSQL)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from commands import child_env
from testdata import DATA, MODEL, ROOT

CLIP = "sadtalker_WDA_KatieHill_000.mp4"


def long_clip(path: Path, repeats: int) -> Path:
    """The real clip, shrunk to 320x240 and played ``repeats`` times: a source that lasts."""
    cap = cv2.VideoCapture(str(DATA / "videos" / CLIP))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        canvas = np.zeros((240, 320, 3), np.uint8)
        canvas[:, 40:280] = cv2.resize(frame, (240, 240), interpolation=cv2.INTER_AREA)
        frames.append(canvas)
    cap.release()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 240))
    for _ in range(repeats):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return path


def small_clip(path, n=200, size=(320, 240), fourcc="mp4v"):
    """The real clip's frames, letterboxed into ``size``: faces stay ~100 px, frames stay cheap."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, size)
    assert writer.isOpened()
    cap = cv2.VideoCapture(str(DATA / "videos" / CLIP))
    w, h = size
    for _ in range(n):
        ok, frame = cap.read()
        if not ok:
            break
        side = min(w, h)
        face = cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((h, w, 3), np.uint8)
        canvas[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side] = face
        writer.write(canvas)
    cap.release()
    writer.release()
    return path


class LoopingCapture:
    """A video file that starts over at its end ``loops`` times (reopened each time, like a user would)."""

    def __init__(self, path, loops):
        self.path, self.loops = str(path), loops
        self.cap = cv2.VideoCapture(self.path)

    def isOpened(self):
        return self.cap.isOpened()

    def read(self):
        ok, frame = self.cap.read()
        if not ok and self.loops > 0:
            self.loops -= 1
            self.cap.release()
            self.cap = cv2.VideoCapture(self.path)
            ok, frame = self.cap.read()
        return ok, frame

    def get(self, prop):
        return self.cap.get(prop)

    def release(self):
        self.cap.release()


class Live:
    """A headless ``python -m realtime`` on the gallery; its event lines with the time they arrived."""

    def __init__(self, clip: Path, url: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "realtime", "--source", str(clip), "--headless", "--pace", "--events", "-",
             "--model", str(MODEL), "--gallery", url], cwd=ROOT, env=child_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, dict]] = []
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), json.loads(line)))

    def first(self, test, after: float, timeout: float = 20.0) -> float:
        """When (monotonic) the first frame line after ``after`` passed ``test``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, event in list(self.lines):
                if t >= after and "faces" in event and event["faces"] and test(event):
                    return t
            assert self.proc.poll() is None, f"the live process ended early: {''.join(self.err)[-2000:]}"
            time.sleep(0.02)
        raise AssertionError(f"nothing passed the test within {timeout} s; stderr: {''.join(self.err)[-2000:]}")

    def frames_between(self, a: float, b: float) -> list[dict]:
        return [e for t, e in list(self.lines) if a <= t <= b and "faces" in e]


def nearest_is(name):
    return lambda event: all(face["nearest"] == name for face in event["faces"])


def seconds_to_stop(proc: subprocess.Popen, timeout: float = 30.0) -> float:
    """Send SIGTERM (`docker stop`, `kill PID`) and return how long the process took to exit."""
    import signal
    stopped = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=timeout)
    return time.monotonic() - stopped
