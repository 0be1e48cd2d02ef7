"""Frames from a camera, a stream URL or a video file, behind one interface.

Live sources (cameras, and streams: ``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://`` URLs or a
GStreamer pipeline) are read on a background thread (imutils-style): the loop always takes the
newest frame, so a slow frame in the loop never delays the next grab. A live source that stops
delivering is reopened ``retries`` times with a doubling back-off before the source reports its
end; :meth:`VideoSource.stop` (the loop's SIGTERM) ends any wait for a frame or a reconnection at
once. Files (and a URL that reports a frame count: a file on a web server) are read in order;
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

from realtime.errors import UserError, opencv_silent
from realtime.urls import mask_url

log = logging.getLogger(__name__)


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# Seconds a stream may take to connect, or to deliver the next frame, before it counts as stopped.
STREAM_TIMEOUT = 10.0
# Waits (for a frame, the back-off, a reconnection) are taken in slices this long, checking stop().
POLL = 0.05
READER_THREAD, REOPEN_THREAD = "camera-reader", "camera-reopen"


def threads_in_opencv() -> bool:
    """Whether a reader or reopening thread given up on (a stalled stream's read or open) is still
    inside OpenCV: the process must then end without shutting the interpreter down, since such a
    thread returning into a finalizing interpreter aborts the process."""
    return any(t.name in (READER_THREAD, REOPEN_THREAD) and t.is_alive() for t in threading.enumerate())


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
        return "stream " + mask_url(str(source))
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
        self._halt = False  # stop() was called: a plain flag, so a signal handler may set it
        self.ended_early = False   # a file that stopped well short of its frame count
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
        self._stopped = False     # closed
        if self.is_camera and threaded:
            self._cond = threading.Condition()
            self._latest: np.ndarray | None = first
            self._seq = 1
            self._taken = 0
            self._failed = False
            self._pending = None
            self._start_reader()
        log.info("source %s: %dx%d at %.1f fps%s", self.name, *self.size, self.fps,
                 f", {self.frame_count} frames" if self.frame_count else "")

    def _open(self) -> cv2.VideoCapture:
        """Open (or reopen) the source; a camera is asked for the configured size and rate."""
        with opencv_silent():   # no multi-line backend warnings: we raise one clear error instead
            cap = self._opener(self.source)
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
    def _start_reader(self) -> None:
        self._quit = threading.Event()
        self._handoff = {"lock": threading.Lock(), "done": False, "orphaned": False}
        self._thread = threading.Thread(target=self._reader, args=(self._cap, self._quit, self._handoff),
                                        name=READER_THREAD, daemon=True)
        self._thread.start()

    def _reader(self, cap: cv2.VideoCapture, quit: threading.Event, handoff: dict) -> None:
        """Read ``cap`` until told to quit or it fails; a reader given up on while it was still in a
        read (a stalled stream) releases its capture itself when that read returns."""
        try:
            while not quit.is_set():
                ok, frame = cap.read()
                if quit.is_set():
                    break
                with self._cond:
                    if ok and frame is not None:
                        self._latest, self._seq = frame, self._seq + 1
                    else:
                        self._failed = True
                    self._cond.notify_all()
                if not ok:
                    break
        finally:
            with handoff["lock"]:
                handoff["done"] = True
                if handoff["orphaned"]:
                    cap.release()

    def _read_threaded(self) -> np.ndarray | None:
        end = time.monotonic() + self.read_timeout
        with self._cond:
            while not (self._seq > self._taken or self._failed or self._stopped or self._halt):
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(POLL, left))
            if self._seq > self._taken and not self._halt:
                self._taken = self._seq
                return self._latest
        return None

    # -- public ------------------------------------------------------------------------------
    def stop(self) -> None:
        """End the source now: a wait for a frame or a reconnection returns at once and ``read``
        returns None from then on, without counting the source as lost. Safe in a signal handler
        (it only sets a flag; the waits look at it every ``POLL`` s)."""
        self._halt = True

    def read(self) -> np.ndarray | None:
        if self._stopped or self._halt:
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
        elif not self.is_camera:
            self._check_end()
        return frame

    def _check_end(self) -> None:
        """A file that ends well before the frame count its container gives is damaged or cut
        short: say so once (the frames it had were played; the run still ends normally)."""
        count, read = self.frame_count, self.frames_read
        if count and not self.ended_early and count - read > max(2, count // 50):
            self.ended_early = True
            log.warning("%s ended after %d of its %d frames (damaged or cut short): the rest could not be read",
                        self.name, read, count)

    def _read_once(self) -> np.ndarray | None:
        if self._thread is not None:
            return self._read_threaded()
        ok, frame = self._cap.read()
        return frame if ok else None

    def _recover(self) -> np.ndarray | None:
        """Reopen a camera that stopped delivering; None once the retries are spent, or at once
        when :meth:`stop` is called (then the source is not lost: it was told to end)."""
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            if self._stopped or self._halt:
                return None
            log.warning("%s stopped delivering frames; reopening (%d/%d) in %.1fs",
                        self.name, attempt, self.retries, delay)
            if not self._pause(delay):
                return None
            delay *= 2
            self._release(self.read_timeout + 1.0)     # a stream's read returns within its timeout
            if self._halt:
                return None
            reopened = self._reopen()
            if reopened is None:
                return None
            self._cap, frame = reopened
            if frame is not None:
                if self._thread is not None:
                    self._failed = False
                    self._latest, self._seq, self._taken = frame, self._seq + 1, self._seq + 1
                    self._start_reader()
                return frame
        if self._halt:
            return None
        log.warning("%s gave no frames after %d retries; stopping", self.name, self.retries)
        self.lost = True
        return None

    def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` in slices; False as soon as :meth:`stop` is called."""
        end = time.monotonic() + seconds
        while not self._halt:
            left = end - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(POLL, left))
        return False

    def _reopen(self) -> tuple[cv2.VideoCapture, np.ndarray | None] | None:
        """The source opened again and its first frame (None: it gave none), or None when
        :meth:`stop` came first. Opening a stream that does not answer takes up to
        ``STREAM_TIMEOUT``, so it runs on a helper thread; one told to stop is left to finish and
        release what it opened by itself."""
        outcome: dict = {}
        guard = threading.Lock()

        def attempt():
            cap = self._open()
            frame = None
            if cap.isOpened():
                ok, frame = cap.read()
                frame = frame if ok else None
            with guard:
                if outcome.get("abandoned"):
                    cap.release()
                else:
                    outcome["result"] = (cap, frame)

        helper = threading.Thread(target=attempt, name=REOPEN_THREAD, daemon=True)
        helper.start()
        while helper.is_alive() and not self._halt:
            helper.join(POLL)
        with guard:
            if "result" in outcome:
                return outcome["result"]
            outcome["abandoned"] = True
        return None

    def _release(self, wait: float) -> bool:
        """Stop the reader thread (if any) and release the capture. A reader still in a read after
        ``wait`` s, or when :meth:`stop` comes, is left to release it itself when the read returns
        (releasing under a read would crash OpenCV); False then."""
        if self._thread is None:
            self._cap.release()
            return True
        thread, handoff = self._thread, self._handoff
        self._quit.set()
        with self._cond:
            self._cond.notify_all()
        end = time.monotonic() + wait
        while thread.is_alive() and not self._halt and time.monotonic() < end:
            thread.join(POLL)
        with handoff["lock"]:
            if not handoff["done"]:
                handoff["orphaned"] = True
                return False
        self._cap.release()
        return True

    def close(self) -> None:
        """Release the source; a reader stuck in a stalled stream's read is not waited for."""
        if not self._stopped:
            self._stopped = True
            self._release(0.5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
