"""Frames from a camera, a stream URL or a video file, behind one interface.

Live sources (cameras, and streams: ``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://`` URLs or a
GStreamer pipeline) are read on a background thread (imutils-style): the loop always takes the
newest frame, so a slow frame in the loop never delays the next grab. A live source that stops
delivering is reopened ``retries`` times with a doubling back-off before the source reports its
end. Files (and a URL that reports a frame count: a file on a web server) are read in order;
pacing to the file's fps is the loop's job (a window plays at the file's rate, headless runs go as
fast as they can).
"""
from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from realtime.errors import UserError

log = logging.getLogger(__name__)


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@")

# Seconds a stream may take to connect, or to deliver the next frame, before it counts as stopped.
STREAM_TIMEOUT = 10.0


def parse_source(value) -> int | str:
    """A camera index (int or digit string) stays an int; a URL, a pipeline or a file path stays text."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def is_pipeline(source) -> bool:
    """A GStreamer pipeline (``... ! appsink``), which OpenCV opens with its GStreamer backend."""
    return isinstance(source, str) and " ! " in source


def is_stream(source) -> bool:
    """A network URL (rtsp, rtmp, http(s), udp, ...) or a GStreamer pipeline: live, never a file path."""
    return isinstance(source, str) and (bool(_URL.match(source.strip())) or is_pipeline(source))


def describe_source(source) -> str:
    """How logs and errors name a source: ``camera 0``, ``stream rtsp://user:***@host/cam``, or the path.

    A URL's password never reaches a log line or an error message."""
    if isinstance(source, int):
        return f"camera {source}"
    if is_stream(source):
        return "stream " + _PASSWORD.sub(r"\1:***@", str(source))
    return str(source)


def open_capture(source: int | str) -> cv2.VideoCapture:
    """The default opener: cameras and files as OpenCV picks, streams with connect and read timeouts."""
    if is_pipeline(source):
        return cv2.VideoCapture(source, cv2.CAP_GSTREAMER)
    if is_stream(source):
        ms = int(STREAM_TIMEOUT * 1000)
        return cv2.VideoCapture(source, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    return cv2.VideoCapture(source)


def _quiet_open(opener: Callable, source) -> cv2.VideoCapture:
    """Open without OpenCV's multi-line backend warnings (we raise one clear error instead)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return opener(source)
    finally:
        cv2.utils.logging.setLogLevel(level)


def _open_error(source) -> UserError:
    what = describe_source(source)
    if isinstance(source, int):
        return UserError(f"{what} cannot be opened: is it connected? try another --source index, or play a video "
                         f"file: --source video.mp4")
    if is_pipeline(source) and not cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        return UserError(f"{what} is a GStreamer pipeline, but this OpenCV was built without GStreamer: "
                         f"pass a URL or a camera index")
    if is_stream(source):
        return UserError(f"{what} cannot be opened (no answer within {STREAM_TIMEOUT:.0f}s, refused, or not a "
                         f"video stream): check the URL and that the server is up")
    return UserError(f"{what} is not a video OpenCV can read (not a video, or a damaged or truncated one): "
                     f"pass another --source")


class VideoSource:
    """``read()`` returns the next BGR frame, or None at the end (file over, camera or stream gone).

    ``is_camera`` is True for every live source, cameras and streams alike: read on a thread,
    reopened when it stops, timed by the wall clock. ``kind`` tells them apart ("camera",
    "stream", "file"). ``width``/``height``/``fps`` are requested from a camera (0: its default);
    what it actually delivers is logged and kept in ``size`` and ``fps``.
    """

    def __init__(self, source: int | str, threaded: bool = True, retries: int = 3, backoff: float = 0.5,
                 opener: Callable = open_capture, read_timeout: float = 2.0,
                 width: int = 0, height: int = 0, fps: float = 0.0):
        self.source = parse_source(source)
        self.kind = "camera" if isinstance(self.source, int) else "stream" if is_stream(self.source) else "file"
        self.name = describe_source(self.source)
        self.is_camera = self.kind != "file"
        self.retries, self.backoff = retries, backoff
        self.read_timeout = max(read_timeout, STREAM_TIMEOUT) if self.kind == "stream" else read_timeout
        self._requested = {cv2.CAP_PROP_FRAME_WIDTH: width, cv2.CAP_PROP_FRAME_HEIGHT: height, cv2.CAP_PROP_FPS: fps}
        self._opener = opener
        self.frames_read = 0
        self.lost = False  # a live source that stopped and did not come back (a file that ends is not lost)
        if self.kind == "file":
            path = Path(self.source)
            if not path.is_file():
                raise UserError(f"video file {path} not found: pass --source with a video file, a stream URL or "
                                f"a camera index")
        self._cap = self._open()
        if not self._cap.isOpened():
            self._cap.release()
            raise _open_error(self.source)
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            hint = {"camera": ": is it in use by another program? try another --source index",
                    "stream": ": check the URL and the server",
                    "file": ": not a video, or an empty or damaged one: pass another --source"}[self.kind]
            raise UserError(f"{self.name} delivers no frames{hint}")
        self._pending: np.ndarray | None = first
        self.size = (first.shape[1], first.shape[0])  # width, height
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if self.kind == "stream" and count > 0 and not is_pipeline(self.source):
            self.kind, self.is_camera = "file", False  # a video file on a web server: it ends, it is not reopened
        self.frame_count = count if (count > 0 and not self.is_camera) else None
        if self.kind == "camera" and any(self._requested.values()):
            log.info("%s: asked for %s, delivers %dx%d at %.1f fps", self.name, self._asked(), *self.size, fps)
        self._thread: threading.Thread | None = None
        self._stopped = False
        if self.is_camera and threaded:
            self._cond = threading.Condition()
            self._latest: np.ndarray | None = first
            self._seq = 1
            self._taken = 0
            self._failed = False
            self._pending = None
            self._thread = threading.Thread(target=self._reader, name="camera-reader", daemon=True)
            self._thread.start()
        log.info("source %s: %dx%d at %.1f fps%s", self.name, *self.size, self.fps,
                 f", {self.frame_count} frames" if self.frame_count else "")

    def _open(self) -> cv2.VideoCapture:
        """Open (or reopen) the source; a camera is asked for the configured size and rate."""
        cap = _quiet_open(self._opener, self.source)
        if self.kind == "camera" and cap.isOpened():
            for prop, value in self._requested.items():
                if value:
                    cap.set(prop, float(value))
        return cap

    def _asked(self) -> str:
        w, h, fps = self._requested.values()
        size = f"{w or 'default'}x{h or 'default'}"
        return size + (f" at {fps:g} fps" if fps else "")

    # -- camera thread -----------------------------------------------------------------------
    def _reader(self) -> None:
        while not self._stopped:
            ok, frame = self._cap.read()
            with self._cond:
                if ok and frame is not None:
                    self._latest, self._seq = frame, self._seq + 1
                else:
                    self._failed = True
                self._cond.notify_all()
            if not ok:
                return

    def _read_threaded(self) -> np.ndarray | None:
        with self._cond:
            self._cond.wait_for(lambda: self._seq > self._taken or self._failed or self._stopped,
                                timeout=self.read_timeout)
            if self._seq > self._taken:
                self._taken = self._seq
                return self._latest
        return None

    # -- public ------------------------------------------------------------------------------
    def read(self) -> np.ndarray | None:
        if self._stopped:
            return None
        if self._pending is not None:
            frame, self._pending = self._pending, None
            self.frames_read += 1
            return frame
        frame = self._read_once()
        if frame is None and self.is_camera:
            frame = self._recover()
        if frame is not None:
            self.frames_read += 1
        return frame

    def _read_once(self) -> np.ndarray | None:
        if self._thread is not None:
            return self._read_threaded()
        ok, frame = self._cap.read()
        return frame if ok else None

    def _recover(self) -> np.ndarray | None:
        """Reopen a camera that stopped delivering; None once the retries are spent."""
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            if self._stopped:
                return None
            log.warning("%s stopped delivering frames; reopening (%d/%d) in %.1fs",
                        self.name, attempt, self.retries, delay)
            time.sleep(delay)
            delay *= 2
            self._stop_thread()
            self._cap.release()
            self._cap = self._open()
            if not self._cap.isOpened():
                continue
            ok, frame = self._cap.read()
            if ok and frame is not None:
                if self._thread is not None:
                    self._stopped = False
                    self._failed = False
                    self._latest, self._seq, self._taken = frame, self._seq + 1, self._seq + 1
                    self._thread = threading.Thread(target=self._reader, name="camera-reader", daemon=True)
                    self._thread.start()
                return frame
        log.warning("%s gave no frames after %d retries; stopping", self.name, self.retries)
        self.lost = True
        return None

    def _stop_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._stopped = True
            with self._cond:
                self._cond.notify_all()
            self._thread.join(timeout=self.read_timeout + 1.0)  # a stream's read returns within its timeout
        self._stopped = False

    def close(self) -> None:
        self._stop_thread()
        self._stopped = True
        self._cap.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
