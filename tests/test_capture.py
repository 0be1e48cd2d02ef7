"""realtime.capture: a fake VideoCapture stands in for a camera to test threading and reopening; stream
URLs (a real MJPEG server on 127.0.0.1, read by OpenCV's FFmpeg backend), reconnecting when the stream
drops, and the camera settings asked of a camera."""
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from benchmarks.inputs import read_frames
from mjpeg import MJPEGServer
from realtime.capture import VideoSource, describe_source, is_stream, parse_source
from realtime.errors import UserError
from testdata import DATA, ROOT, needs_data

CLIP = "sadtalker_WDA_KatieHill_000.mp4"


class FakeCamera:
    """Delivers ``frames`` frames (each a different grey), then fails like an unplugged camera."""

    opened = 0

    def __init__(self, plan):
        self.plan = plan
        FakeCamera.opened += 1
        self.frames = plan.pop(0) if plan else None
        self.n = 0

    def isOpened(self):
        return self.frames is not None

    def read(self):
        if self.frames is None or self.n >= self.frames:
            return False, None
        self.n += 1
        time.sleep(0.002)
        return True, np.full((48, 64, 3), self.n % 255, np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def camera(plan, **kw):
    return VideoSource(0, opener=lambda src: FakeCamera(plan), backoff=0.0, read_timeout=0.5, **kw)


def drain(source):
    n = 0
    while source.read() is not None:
        n += 1
    return n


def test_parse_source():
    assert parse_source(0) == 0 and parse_source(" 2 ") == 2 and parse_source("clip.mp4") == "clip.mp4"


@pytest.mark.parametrize("threaded", [False, True])
def test_camera_that_stops_is_reopened_then_ends_cleanly(threaded):
    FakeCamera.opened = 0
    source = camera([5, 3, None, None], threaded=threaded, retries=3)
    assert source.size == (64, 48) and source.fps == 30.0 and source.is_camera
    n = drain(source)
    source.close()
    # 5 frames, a reopen that gives 3 more, then a second outage with all 3 retries failing:
    # each outage gets its own ``retries`` tries, so 1 + 1 + 3 openings.
    assert FakeCamera.opened == 5
    assert (n == 8) if not threaded else (2 <= n <= 8)   # a threaded reader may skip to the newest frame
    assert source.read() is None


def test_camera_that_never_opens_is_a_user_error():
    with pytest.raises(UserError, match=r"camera 0 cannot be opened: .* another --source index, or play a video "
                                        r"file: --source video\.mp4"):
        camera([None])


def test_no_retries_means_stop_at_first_failure():
    FakeCamera.opened = 0
    source = camera([2, 10], threaded=False, retries=0)
    assert drain(source) == 2 and FakeCamera.opened == 1


def test_threaded_reader_never_blocks_on_a_slow_consumer():
    source = camera([400], threaded=True, retries=0)
    first = source.read()
    time.sleep(0.3)                 # a slow frame in the loop ...
    newest = source.read()          # ... and we get the newest frame, not a backlog
    assert first is not None and newest is not None
    assert int(newest[0, 0, 0]) - int(first[0, 0, 0]) > 50      # frames numbered 1, 2, ...: 50 and more skipped
    source.close()
    assert not any(t.name == "camera-reader" and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize("url", ["rtsp://admin:se/cretPW9@10.0.0.5/cam", "rtsp://admin:Stro@ngPW9@10.0.0.5:554/a",
                                 "rtsp://admin:a:b/c@d@10.0.0.5/live?x=1"])
def test_a_stream_password_holding_at_or_slash_is_never_shown(url):
    from realtime.capture import describe_source
    shown = describe_source(url)
    assert shown.startswith("stream rtsp://admin:***@10.0.0.5") and "PW9" not in shown and "@d" not in shown, shown
    with pytest.raises(UserError) as caught:         # an opener that fails: the error names the stream masked
        VideoSource(url, opener=lambda src: FakeCamera([None]))
    assert "admin:***@10.0.0.5" in str(caught.value) and "PW9" not in str(caught.value) and "b/c" not in str(caught.value)


def test_stop_ends_a_stream_reconnection_at_once_and_the_stream_is_not_lost():
    """A real MJPEG camera (http.server) goes away: the source starts reconnecting (each attempt
    would wait the 10 s open timeout); stop() (the loop's SIGTERM) ends the wait at once, and the
    source is not counted as lost (the run ends as `q` would, exit 0)."""
    server = MJPEGServer()
    source = VideoSource(server.url, backoff=0.2, retries=3)
    try:
        assert source.kind == "stream" and source.read() is not None
        server.go_away()
        ended: list = []
        reader = threading.Thread(target=lambda: ended.append(drain(source)), daemon=True)
        reader.start()
        time.sleep(1.0)                                          # back-off done, the first reopen waiting
        assert reader.is_alive() and any(t.name == "camera-reopen" for t in threading.enumerate())
        stopped = time.monotonic()
        source.stop()
        reader.join(timeout=5)
        took = time.monotonic() - stopped
        assert not reader.is_alive() and ended and took < 0.5, took   # before: 3 tries of 10 s each
        assert not source.lost and source.read() is None
    finally:
        source.close()
        server.close()


STALLED_EXIT = r"""
import sys, time
sys.path.insert(0, "tests")
from mjpeg import MJPEGServer
import realtime.capture as capture
capture.STREAM_TIMEOUT = 1.0
server = MJPEGServer()
source = capture.VideoSource(server.url, retries=0, read_timeout=0.5)
assert source.read() is not None
server.fps = 0.01                      # the stream stalls without closing: the reader waits in FFmpeg
time.sleep(0.3)
source.stop()
source.close()                         # the reader is given up on, still inside its read
assert capture.threads_in_opencv()
from realtime.__main__ import _exit


class SlowShutdown:                    # the interpreter's shutdown lasts past the reader's 1 s read timeout
    def __del__(self):
        time.sleep(2)


keep = SlowShutdown()
_exit(0) if sys.argv[1] == "guarded" else sys.exit(0)
"""


def test_a_run_ended_while_a_stalled_stream_is_read_exits_cleanly():
    """The live program stops at once on SIGTERM even while its reader waits on a stalled stream; the
    reader, left in OpenCV, returned while the interpreter shut down and aborted the process
    ("terminate called without an active exception", exit 134; with ``sys.exit`` this script still
    does on CPython 3.11) unless the exit skips the shutdown."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    guarded = subprocess.run([sys.executable, "-c", STALLED_EXIT, "guarded"], cwd=root, env=env, capture_output=True,
                             text=True, timeout=60)
    assert guarded.returncode == 0 and "terminate called" not in guarded.stderr, guarded.stderr[-2000:]


RAW_WARNINGS = r"""
import sys, time
sys.path.insert(0, "tests")
from realtime.errors import setup_logging
setup_logging(sys.argv[1] == "-v")
from mjpeg import MJPEGServer
import realtime.capture as capture
capture.STREAM_TIMEOUT = 1.0
server = MJPEGServer()
source = capture.VideoSource(server.url, retries=0, read_timeout=0.5)
assert source.read() is not None
server.fps = 0.01                      # the stream stalls: FFmpeg's read times out after 1 s
while source.read() is not None:
    pass
time.sleep(1.5)
source.close()
server.close()
"""


def test_opencv_warnings_reach_stderr_only_with_v():
    """A stalled stream printed OpenCV's raw `[ WARN:0@...] ... Stream timeout triggered` lines."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    env["PYTHONPATH"] = str(root)
    quiet, verbose = (subprocess.run([sys.executable, "-c", RAW_WARNINGS, flag], cwd=root, env=env,
                                     capture_output=True, text=True, timeout=60) for flag in ("", "-v"))
    assert quiet.returncode == 0 and verbose.returncode == 0, quiet.stderr + verbose.stderr
    assert "gave no frames" in quiet.stderr                                # said in our words
    assert "[ WARN" not in quiet.stderr, quiet.stderr
    assert "[ WARN" in verbose.stderr and "Stream timeout" in verbose.stderr   # -v shows OpenCV's own


def test_a_file_that_ends_well_before_its_frame_count_says_so(tmp_path, caplog):
    """A damaged video that ended after 2 of its 125 frames exited 0 without a word."""
    import logging
    import cv2
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(125):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:len(data) // 40])                   # a few frames, and the header's count of 125
    for video, warned in ((whole, False), (cut, True)):
        caplog.clear()
        with caplog.at_level(logging.WARNING), VideoSource(str(video)) as source:
            n = drain(source)
            assert source.read() is None                       # said once
        assert (f"ended after {n} of its 125 frames (damaged or cut short)" in caplog.text) == warned, caplog.text
        assert caplog.text.count("ended after") == int(warned)
        assert (n == 125) != warned


def test_urls_and_pipelines_are_streams_not_paths():
    for url in ("rtsp://127.0.0.1:8554/cam", "rtmp://host/live/key", "http://cam.local/video.mjpg",
                "https://host/s.m3u8", "udp://@:1234", "v4l2src ! videoconvert ! appsink"):
        assert is_stream(url) and parse_source(url) == url, url
    for other in ("clip.mp4", "/data/videos/a b.mp4", "2", 0):
        assert not is_stream(other)
    assert describe_source("rtsp://admin:hunter2@10.0.0.5/cam") == "stream rtsp://admin:***@10.0.0.5/cam"
    assert describe_source(3) == "camera 3" and describe_source("clip.mp4") == "clip.mp4"


@pytest.fixture
def clip_frames():
    """The shared clip's first 40 frames (512x512, one talking head)."""
    if DATA is None:
        pytest.skip("FACES_DATA is not set (point it at the shared data folder)")
    return read_frames(DATA / "videos" / CLIP, 40)


def test_a_dropping_mjpeg_stream_is_reopened_like_a_camera(clip_frames):
    server = MJPEGServer(clip_frames, fps=250, per_connection=30)
    try:
        source = VideoSource(server.url, threaded=False, retries=2, backoff=0.0)
        assert source.kind == "stream" and source.is_camera and source.size == (512, 512)
        frames = [source.read() for _ in range(75)]        # 30 a connection: the server hung up twice
        assert all(f is not None and f.shape == (512, 512, 3) for f in frames)
        assert server.connections >= 3 and not source.lost
        server.close()                                      # now it is gone for good
        while source.read() is not None:
            pass
        assert source.lost
        source.close()
    finally:
        server.close()


def test_a_stream_that_cannot_be_reached_is_one_line_naming_the_url():
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match=rf"stream http://u:\*\*\*@127.0.0.1:{port}/cam cannot be opened") as info:
        VideoSource(f"http://u:secret@127.0.0.1:{port}/cam", retries=0)
    assert "\n" not in str(info.value) and "secret" not in str(info.value)


@needs_data
@pytest.mark.skipif(not (ROOT / "models" / "encoder.tflite").is_file(), reason="no shipped encoder in models/")
def test_live_program_on_an_mjpeg_stream(clip_frames, tmp_path):
    server = MJPEGServer(clip_frames)
    try:
        proc = subprocess.run([sys.executable, "-m", "realtime", "--source", server.url, "--headless",
                               "--max-frames", "25", "--events", "-", "--gallery", str(tmp_path / "g.db")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert lines[-1]["summary"]["frames"] == 25
    assert sum(1 for l in lines[:-1] if l["faces"]) >= 20          # the talking head is boxed
    assert f"source stream {server.url}: 512x512" in proc.stderr


class RecordingCamera:
    """A camera that remembers what it was asked and delivers 320x240 whatever it was asked."""

    asked: list = []

    def __init__(self, frames):
        self.frames = frames

    def isOpened(self):
        return True

    def set(self, prop, value):
        RecordingCamera.asked.append((prop, value))
        return True

    def read(self):
        if self.frames <= 0:
            return False, None
        self.frames -= 1
        import numpy as np
        return True, np.zeros((240, 320, 3), np.uint8)

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        pass


def test_camera_settings_are_asked_on_every_open_and_the_actual_ones_logged(caplog):
    RecordingCamera.asked = []
    plan = [3, 2]
    with caplog.at_level(logging.INFO, logger="realtime.capture"):
        source = VideoSource(0, threaded=False, retries=1, backoff=0.0, width=1280, height=720, fps=60,
                             opener=lambda src: RecordingCamera(plan.pop(0) if plan else 0))
        n = 0
        while source.read() is not None:
            n += 1
    wanted = [(cv2.CAP_PROP_FRAME_WIDTH, 1280.0), (cv2.CAP_PROP_FRAME_HEIGHT, 720.0), (cv2.CAP_PROP_FPS, 60.0)]
    assert RecordingCamera.asked[:3] == wanted and RecordingCamera.asked[3:6] == wanted   # again after the reopen
    assert n == 5 and source.size == (320, 240)
    assert "camera 0: asked for 1280x720 at 60 fps, delivers 320x240 at 30.0 fps" in caplog.text
    RecordingCamera.asked = []
    VideoSource(0, threaded=False, opener=lambda src: RecordingCamera(1)).close()
    assert RecordingCamera.asked == []                  # 0: the camera's own default, nothing asked
