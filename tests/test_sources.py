"""Live sources other than a camera: stream URLs (a real MJPEG server on 127.0.0.1, read by OpenCV's
FFmpeg backend), reconnecting when the stream drops, and the camera settings asked of a camera."""
import http.server
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import pytest

from realtime.capture import VideoSource, describe_source, is_stream, parse_source
from realtime.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ["FACES_DATA"]) if os.environ.get("FACES_DATA") else None
CLIP = "sadtalker_WDA_KatieHill_000.mp4"
needs_data = pytest.mark.skipif(DATA is None, reason="FACES_DATA is not set (point it at the shared data folder)")


def test_urls_and_pipelines_are_streams_not_paths():
    for url in ("rtsp://127.0.0.1:8554/cam", "rtmp://host/live/key", "http://cam.local/video.mjpg",
                "https://host/s.m3u8", "udp://@:1234", "v4l2src ! videoconvert ! appsink"):
        assert is_stream(url) and parse_source(url) == url, url
    for other in ("clip.mp4", "/data/videos/a b.mp4", "2", 0):
        assert not is_stream(other)
    assert describe_source("rtsp://admin:hunter2@10.0.0.5/cam") == "stream rtsp://admin:***@10.0.0.5/cam"
    assert describe_source(3) == "camera 3" and describe_source("clip.mp4") == "clip.mp4"


class MJPEGServer:
    """multipart/x-mixed-replace JPEG frames of a shared video, ``per_connection`` frames per client
    before the server hangs up (a stream that drops)."""

    def __init__(self, jpegs, per_connection):
        self.jpegs, self.per_connection, self.connections = jpegs, per_connection, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for i in range(outer.per_connection):
                        jpeg = outer.jpegs[i % len(outer.jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                except OSError:
                    pass  # the client left

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jpegs():
    if DATA is None:
        pytest.skip("FACES_DATA is not set (point it at the shared data folder)")
    cap = cv2.VideoCapture(str(DATA / "videos" / CLIP))
    frames = []
    while len(frames) < 40:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", frame)[1].tobytes())
    cap.release()
    return frames


def test_a_dropping_mjpeg_stream_is_reopened_like_a_camera(jpegs):
    server = MJPEGServer(jpegs, per_connection=30)
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
        server.server.server_close()


def test_a_stream_that_cannot_be_reached_is_one_line_naming_the_url():
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match=rf"stream http://u:\*\*\*@127.0.0.1:{port}/cam cannot be opened"):
        VideoSource(f"http://u:secret@127.0.0.1:{port}/cam", retries=0)


@needs_data
@pytest.mark.skipif(not (ROOT / "models" / "encoder.tflite").is_file(), reason="no shipped encoder in models/")
def test_live_program_on_an_mjpeg_stream(jpegs, tmp_path):
    server = MJPEGServer(jpegs, per_connection=10_000)
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
