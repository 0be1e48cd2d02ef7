"""Key handling as a pure state machine, so typing a name can be tested without a window.

Normal mode: ``e`` starts name entry (enroll the largest face), ``n`` starts name entry for an
Unknown face (name its unknown group), ``q``/Esc quit, space pauses, ``+``/``-`` move the
threshold. Name entry: printable keys append, Backspace deletes, Enter saves, Esc cancels
(``q`` and space are letters there).

Keys are code points (``ord`` of the character typed) or :data:`ENTER`, :data:`ESC`,
:data:`BACKSPACE`. :func:`from_waitkey` and :func:`from_keysym` turn what a window backend
delivers into them, dropping modifiers (Shift alone is not a letter) and other non-printables.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from realtime.names import MAX_NAME_LENGTH

ENTER = (10, 13)
ESC = 27
BACKSPACE = (8, 127, 65288)

# X11 keysyms (also what OpenCV's Qt and GTK backends return for keys that are not Latin-1 text).
_KEYSYM_SPECIAL = {0xFF0D: 13, 0xFF8D: 13, 0xFF1B: ESC, 0xFF08: 8, 0xFFFF: 127, 0xFF80: 32, 0xFFAB: 43, 0xFFAD: 45}
_UNICODE_KEYSYM = 0x01000000

# Names a scripted key sequence may use for keys that are not one printable character.
KEY_NAMES = {"ENTER": 13, "RETURN": 13, "ESC": 27, "ESCAPE": 27, "BACKSPACE": 8, "SPACE": 32, "COMMA": 44,
             "PLUS": 43, "MINUS": 45}


@dataclass(frozen=True)
class KeyState:
    naming: bool = False
    text: str = ""
    unknown: bool = False       # the name is for an Unknown face's group (n), not a new enrolment (e)


@dataclass(frozen=True)
class Action:
    """What the loop should do: kind is one of quit, pause, threshold_up, threshold_down,
    start_naming, start_naming_unknown, edit, cancel, enroll or name_unknown (with ``name``)."""

    kind: str
    name: str = ""


def from_keysym(keysym: int) -> int | None:
    """An X11 keysym (case already applied, as ``XLookupString`` gives it) -> a key, or None for
    modifiers, function and cursor keys."""
    if 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
        return keysym                                   # Latin-1 keysyms are their code points
    if keysym in _KEYSYM_SPECIAL:
        return _KEYSYM_SPECIAL[keysym]
    if _UNICODE_KEYSYM + 0x20 <= keysym <= _UNICODE_KEYSYM + 0x10FFFF:
        return _printable(keysym - _UNICODE_KEYSYM)
    return None                                          # Shift, Control, Caps Lock, arrows, F-keys...


def from_waitkey(code: int) -> int | None:
    """A ``cv2.waitKeyEx`` code -> a key, or None (no key, a modifier, a non-printable).

    OpenCV's Qt backend sends ASCII keys as ASCII (letters always lower case: it drops Shift),
    Latin-1 letters as a *signed* char of their upper-case form (``Ë`` = -53, also for ``ë``),
    and everything else as the X11 keysym (Shift = 0xFFE1, ``ř`` = 0x1000159). Windows and the
    GTK backend send characters and keysyms. A window that can, reads the exact text instead
    (:mod:`realtime.x11keys`); this is the portable fallback.
    """
    if code is None or code == -1:
        return None
    if -128 <= code < -1:        # Qt: a Latin-1 letter as a signed char, upper case like its ASCII keys' names
        return ord(chr(code & 0xFF).lower())
    if code in (8, 13, 10, 27, 127):
        return 13 if code == 10 else code
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    if code >= 0x100:
        return from_keysym(code)
    return None


def _printable(point: int) -> int | None:
    """The code point if it is one printable character."""
    return point if point < 0x110000 and chr(point).isprintable() else None


def handle_key(state: KeyState, key: int) -> tuple[KeyState, Action | None]:
    """Next state and the action for one key (a code point, ENTER, ESC or BACKSPACE; -1 = none)."""
    if key is None or key < 0:
        return state, None
    if state.naming:
        if key in ENTER:
            name = state.text.strip()
            if not name:
                return KeyState(), Action("cancel")
            return KeyState(), Action("name_unknown" if state.unknown else "enroll", name)
        if key == ESC:
            return KeyState(), Action("cancel")
        if key in BACKSPACE:
            return replace(state, text=state.text[:-1]), Action("edit")
        if key >= 32 and key != 127 and key < 0x110000 and chr(key).isprintable():
            if len(state.text) >= MAX_NAME_LENGTH:
                return state, None
            return replace(state, text=state.text + chr(key)), Action("edit")
        return state, None
    if key in (ord("q"), ord("Q"), ESC):
        return state, Action("quit")
    if key == ord(" "):
        return state, Action("pause")
    if key in (ord("+"), ord("=")):
        return state, Action("threshold_up")
    if key in (ord("-"), ord("_")):
        return state, Action("threshold_down")
    if key in (ord("e"), ord("E")):
        return KeyState(naming=True), Action("start_naming")
    if key in (ord("n"), ord("N")):
        return KeyState(naming=True, unknown=True), Action("start_naming_unknown")
    return state, None


def parse_key_script(script: str) -> dict[int, list[int]]:
    """``"e@30,n,a,m,e,ENTER,q@200"`` -> {frame: [key codes]}.

    A token ``KEY@FRAME`` is pressed at that frame; a token without ``@`` one frame after the
    previous key. KEY is one character or a name in :data:`KEY_NAMES`.
    """
    keys: dict[int, list[int]] = {}
    frame = -1
    for token in (t.strip() for t in script.split(",")):
        if not token:
            continue
        key, at, when = token.rpartition("@") if "@" in token[1:] else (token, "", "")
        if at:
            try:
                frame = int(when)
            except ValueError:
                raise ValueError(f"bad frame number in key token {token!r}") from None
        else:
            key = token
            frame += 1
        if len(key) == 1:
            code = ord(key)
        elif key.upper() in KEY_NAMES:
            code = KEY_NAMES[key.upper()]
        else:
            raise ValueError(f"unknown key {key!r} in key script (one character or one of {', '.join(KEY_NAMES)})")
        keys.setdefault(max(frame, 0), []).append(code)
    return keys
