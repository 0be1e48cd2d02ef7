"""The exact keys typed into our window on X11, read on a connection of our own to the X server.

OpenCV's Qt backend reports ``K`` as ``k`` (it keeps the key, not the character, and drops
Shift) and keeps one key between two ``waitKeyEx`` calls, so a fast typist loses letters while
a frame is processed. The X server gives every client that asks for them each KeyPress on a
window, in order, with the modifier state: a thread here reads them as they come and queues the
characters, so none is lost and ``O'Brien`` stays ``O'Brien``. Only libX11 (and libxkbcommon for
keysyms outside Latin-1, when present) through ctypes; no X11 (Wayland, macOS, Windows, no
libX11) means :func:`attach` returns None and the window falls back to ``cv2.waitKeyEx``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import select
import threading

from realtime.keys import from_keysym

log = logging.getLogger(__name__)

KEY_PRESS, MAPPING_NOTIFY, KEY_PRESS_MASK = 2, 34, 1
_ULONG, _PTR = ctypes.c_ulong, ctypes.c_void_p


class _XKeyEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", _ULONG), ("send_event", ctypes.c_int), ("display", _PTR),
                ("window", _ULONG), ("root", _ULONG), ("subwindow", _ULONG), ("time", _ULONG),
                ("x", ctypes.c_int), ("y", ctypes.c_int), ("x_root", ctypes.c_int), ("y_root", ctypes.c_int),
                ("state", ctypes.c_uint), ("keycode", ctypes.c_uint), ("same_screen", ctypes.c_int)]


class _XEvent(ctypes.Union):
    _fields_ = [("type", ctypes.c_int), ("xkey", _XKeyEvent), ("pad", ctypes.c_long * 24)]


def _libraries():
    """(libX11, libxkbcommon or None) with the signatures used here, or None without libX11."""
    name = ctypes.util.find_library("X11")
    if not name:
        return None
    x = ctypes.CDLL(name)
    x.XOpenDisplay.restype, x.XOpenDisplay.argtypes = _PTR, [ctypes.c_char_p]
    x.XDefaultRootWindow.restype, x.XDefaultRootWindow.argtypes = _ULONG, [_PTR]
    x.XQueryTree.argtypes = [_PTR, _ULONG, ctypes.POINTER(_ULONG), ctypes.POINTER(_ULONG),
                             ctypes.POINTER(ctypes.POINTER(_ULONG)), ctypes.POINTER(ctypes.c_uint)]
    x.XInternAtom.restype, x.XInternAtom.argtypes = _ULONG, [_PTR, ctypes.c_char_p, ctypes.c_int]
    x.XGetWindowProperty.argtypes = [_PTR, _ULONG, _ULONG, ctypes.c_long, ctypes.c_long, ctypes.c_int, _ULONG,
                                     ctypes.POINTER(_ULONG), ctypes.POINTER(ctypes.c_int), ctypes.POINTER(_ULONG),
                                     ctypes.POINTER(_ULONG), ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))]
    x.XFetchName.argtypes = [_PTR, _ULONG, ctypes.POINTER(ctypes.POINTER(ctypes.c_char))]
    x.XSelectInput.argtypes = [_PTR, _ULONG, ctypes.c_long]
    x.XPending.argtypes = x.XConnectionNumber.argtypes = x.XCloseDisplay.argtypes = [_PTR]
    x.XNextEvent.argtypes = [_PTR, ctypes.POINTER(_XEvent)]
    x.XLookupString.argtypes = [ctypes.POINTER(_XKeyEvent), ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_ULONG),
                                _PTR]
    x.XRefreshKeyboardMapping.argtypes = [ctypes.POINTER(_XEvent)]
    x.XKeysymToKeycode.argtypes = [_PTR, _ULONG]
    x.XFree.argtypes = [_PTR]
    xkb = None
    xkb_name = ctypes.util.find_library("xkbcommon")
    if xkb_name:
        xkb = ctypes.CDLL(xkb_name)
        xkb.xkb_keysym_to_utf32.restype, xkb.xkb_keysym_to_utf32.argtypes = ctypes.c_uint32, [ctypes.c_uint32]
    return x, xkb


class X11Keys:
    """Keys typed into one X11 window, queued by a reader thread; :meth:`take` drains them."""

    def __init__(self, x, xkb, display, window: int):
        self._x, self._xkb, self._display = x, xkb, display
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._select_tree(window)
        # From here on only the thread touches the connection (Xlib is not thread-safe).
        self._thread = threading.Thread(target=self._read, name="x11-keys", daemon=True)
        self._thread.start()

    def take(self) -> list[int]:
        """The keys typed since the last call, in order (code points, ENTER, ESC, BACKSPACE)."""
        keys = []
        while not self._queue.empty():
            keys.append(self._queue.get())
        return keys

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        if not self._thread.is_alive():
            self._x.XCloseDisplay(self._display)

    def _select_tree(self, window: int) -> None:
        self._x.XSelectInput(self._display, window, KEY_PRESS_MASK)
        for child in _children(self._x, self._display, window):
            self._select_tree(child)

    def _read(self) -> None:
        x, display = self._x, self._display
        fd = x.XConnectionNumber(display)
        event = _XEvent()
        while not self._stop.is_set():
            if not x.XPending(display):
                select.select([fd], [], [], 0.1)
                continue
            x.XNextEvent(display, ctypes.byref(event))
            if event.type == MAPPING_NOTIFY:
                # Fetch the new keymap now: a key bound for a moment (xdotool types ``ë`` that way)
                # must be looked up before the binding is undone.
                x.XRefreshKeyboardMapping(ctypes.byref(event))
                x.XKeysymToKeycode(display, 0x20)
            elif event.type == KEY_PRESS:
                key = self._key(event)
                if key is not None:
                    self._queue.put(key)

    def _key(self, event: _XEvent) -> int | None:
        keysym = _ULONG()
        self._x.XLookupString(ctypes.byref(event.xkey), ctypes.create_string_buffer(16), 16, ctypes.byref(keysym),
                              None)
        key = from_keysym(keysym.value)
        if key is None and self._xkb is not None and 0x100 <= keysym.value < 0xFD00:   # legacy keysyms: ř, ж, λ
            point = self._xkb.xkb_keysym_to_utf32(keysym.value)
            key = point if point >= 0x20 and chr(point).isprintable() else None
        return key


def attach(title: str) -> X11Keys | None:
    """Read the keys of this process's window called ``title``; None where that cannot be done."""
    if not os.environ.get("DISPLAY"):
        return None
    try:
        libs = _libraries()
    except OSError as err:
        log.debug("no libX11 (%s): keys from cv2.waitKeyEx", err)
        return None
    if libs is None:
        return None
    x, xkb = libs
    display = x.XOpenDisplay(None)
    if not display:
        return None
    window = _find(x, display, title)
    if window is None:
        log.debug("window %r not found on X11: keys from cv2.waitKeyEx", title)
        x.XCloseDisplay(display)
        return None
    return X11Keys(x, xkb, display, window)


def _children(x, display, window: int) -> list[int]:
    root, parent, children, count = _ULONG(), _ULONG(), ctypes.POINTER(_ULONG)(), ctypes.c_uint()
    if not x.XQueryTree(display, window, ctypes.byref(root), ctypes.byref(parent), ctypes.byref(children),
                        ctypes.byref(count)):
        return []
    found = [children[i] for i in range(count.value)]
    if children:
        x.XFree(children)
    return found


def _find(x, display, title: str) -> int | None:
    """The top-level window of ours named ``title`` (by _NET_WM_PID, so another copy's is not taken)."""
    pid_atom = x.XInternAtom(display, b"_NET_WM_PID", True)
    stack = [x.XDefaultRootWindow(display)]
    while stack:
        window = stack.pop()
        name = ctypes.POINTER(ctypes.c_char)()
        if x.XFetchName(display, window, ctypes.byref(name)) and name:
            matches = ctypes.string_at(name).decode("utf-8", "replace") == title
            x.XFree(name)
            if matches and _pid(x, display, window, pid_atom) in (None, os.getpid()):
                return window
        stack.extend(_children(x, display, window))
    return None


def _pid(x, display, window: int, atom: int) -> int | None:
    if not atom:
        return None
    kind, fmt, items, after = _ULONG(), ctypes.c_int(), _ULONG(), _ULONG()
    data = ctypes.POINTER(ctypes.c_ubyte)()
    status = x.XGetWindowProperty(display, window, atom, 0, 1, 0, 6, ctypes.byref(kind), ctypes.byref(fmt),
                                  ctypes.byref(items), ctypes.byref(after), ctypes.byref(data))
    if status != 0 or not data:
        return None
    try:
        return int(ctypes.cast(data, ctypes.POINTER(_ULONG))[0]) if items.value else None
    finally:
        x.XFree(data)
