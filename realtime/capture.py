"""Frames from a camera or a video file, behind one interface.

Cameras are read on a background thread (imutils-style): the loop always takes the newest frame,
so a slow frame in the loop never delays the next grab. A camera that stops delivering is
reopened ``retries`` times with a doubling back-off before the source reports its end. Files are
read in order; pacing to the file's fps is the loop's job (a window plays at the file's rate,
headless runs go as fast as they can).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from realtime.errors import UserError

log = logging.getLogger(__name__)


def parse_source(value) -> int | str:
    """A camera index (int or digit string) stays an int; anything else is a file path."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def _quiet_open(opener: Callable, source) -> cv2.VideoCapture:
    """Open without OpenCV's multi-line backend warnings (we raise one clear error instead)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return opener(source)
    finally:
        cv2.utils.logging.setLogLevel(level)


class VideoSource:
    """``read()`` returns the next BGR frame, or None at the end (file over, camera gone)."""

    def __init__(self, source: int | str, threaded: bool = True, retries: int = 3, backoff: float = 0.5,
                 opener: Callable = cv2.VideoCapture, read_timeout: float = 2.0):
        self.source = parse_source(source)
        self.is_camera = isinstance(self.source, int)
        self.retries, self.backoff, self.read_timeout = retries, backoff, read_timeout
        self._opener = opener
        self.frames_read = 0
        self.lost = False  # a camera that stopped and did not come back (a file that ends is not lost)
        if not self.is_camera:
            path = Path(self.source)
            if not path.is_file():
                raise UserError(f"video file {path} not found: pass --source with a video file or a camera index")
        self._cap = _quiet_open(opener, self.source)
        if not self._cap.isOpened():
            self._cap.release()
            if self.is_camera:
                raise UserError(f"camera {self.source} cannot be opened: is it connected? try another --source index")
            raise UserError(f"{self.source} is not a video OpenCV can read (not a video, or a damaged or truncated "
                            f"one): pass another --source")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            what = f"camera {self.source}" if self.is_camera else f"{self.source}"
            raise UserError(f"{what} delivers no frames" + (": is it in use by another program? try another --source index"
                                                             if self.is_camera else ": not a video, or an empty or "
                                                             "damaged one: pass another --source"))
        self._pending: np.ndarray | None = first
        self.size = (first.shape[1], first.shape[0])  # width, height
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if (count > 0 and not self.is_camera) else None
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
        log.info("source %s: %dx%d at %.1f fps%s", self.source, *self.size, self.fps,
                 f", {self.frame_count} frames" if self.frame_count else "")

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
            log.warning("camera %s stopped delivering frames; reopening (%d/%d) in %.1fs",
                        self.source, attempt, self.retries, delay)
            time.sleep(delay)
            delay *= 2
            self._stop_thread()
            self._cap.release()
            self._cap = _quiet_open(self._opener, self.source)
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
        log.warning("camera %s gave no frames after %d retries; stopping", self.source, self.retries)
        self.lost = True
        return None

    def _stop_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._stopped = True
            with self._cond:
                self._cond.notify_all()
            self._thread.join(timeout=2.0)
        self._stopped = False

    def close(self) -> None:
        self._stop_thread()
        self._stopped = True
        self._cap.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
