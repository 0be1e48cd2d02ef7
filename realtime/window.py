"""The window: an OpenCV window without Qt's debug toolbar and status bar, and its keyboard.

Keys come as :mod:`realtime.keys` codes. On X11 they are read exactly and without loss by
:mod:`realtime.x11keys`; elsewhere ``cv2.waitKeyEx`` codes are translated (letters then keep
whatever case the backend gives). Either way the keys typed while a frame was being processed
are all returned by the next :meth:`Window.keys`.
"""
from __future__ import annotations

import logging
import time

import cv2
import numpy as np

from realtime import x11keys
from realtime.keys import from_waitkey

log = logging.getLogger(__name__)

TITLE = "realtime faces"
_ATTACH_TRIES = 50   # frames to wait for the window to be mapped before falling back to waitKeyEx


class Window:
    def __init__(self, title: str = TITLE):
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        self._x11: x11keys.X11Keys | None = None
        self._tries = 0
        self.pointer: tuple[int, int] | None = None   # the mouse over the frame (pixels; 1:1 with AUTOSIZE)
        cv2.setMouseCallback(title, self._mouse)

    def _mouse(self, event: int, x: int, y: int, flags: int, param) -> None:
        self.pointer = (int(x), int(y))

    def show(self, frame: np.ndarray) -> None:
        cv2.imshow(self.title, frame)
        if self._x11 is None and self._tries < _ATTACH_TRIES:
            self._tries += 1
            cv2.waitKeyEx(1)            # let the window be mapped before looking for it
            self._x11 = x11keys.attach(self.title)
            if self._x11 is not None:
                log.debug("keys read from X11")

    def keys(self, wait_ms: float = 1) -> list[int]:
        """Every key typed since the last call, waiting ``wait_ms`` (the window stays live meanwhile)."""
        deadline = time.perf_counter() + wait_ms / 1000.0
        found: list[int] = []
        while True:
            left = int((deadline - time.perf_counter()) * 1000)
            code = cv2.waitKeyEx(max(1, min(left, 20)))
            if self._x11 is not None:
                found += self._x11.take()       # the backend's code for the same key is a lossy copy
            else:
                key = from_waitkey(code)
                if key is not None:
                    found.append(key)
            if left <= 1:
                return found

    @property
    def closed(self) -> bool:
        """True once the user closed the window (its close button)."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        if self._x11 is not None:
            self._x11.close()
            self._x11 = None
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)
