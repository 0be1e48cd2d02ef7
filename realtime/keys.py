"""Key handling as a pure state machine, so typing a name can be tested without a window.

Normal mode: ``e`` starts name entry, ``q``/Esc quit, space pauses, ``+``/``-`` move the
threshold. Name entry: printable keys append, Backspace deletes, Enter saves, Esc cancels
(``q`` and space are letters there).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

ENTER = (10, 13)
ESC = 27
BACKSPACE = (8, 127, 65288)

# Names a scripted key sequence may use for keys that are not one printable character.
KEY_NAMES = {"ENTER": 13, "RETURN": 13, "ESC": 27, "ESCAPE": 27, "BACKSPACE": 8, "SPACE": 32, "COMMA": 44,
             "PLUS": 43, "MINUS": 45}


@dataclass(frozen=True)
class KeyState:
    naming: bool = False
    text: str = ""


@dataclass(frozen=True)
class Action:
    """What the loop should do: kind is one of quit, pause, threshold_up, threshold_down,
    start_naming, edit, cancel, enroll (with ``name``)."""

    kind: str
    name: str = ""


def handle_key(state: KeyState, key: int) -> tuple[KeyState, Action | None]:
    """Next state and the action for one key code (as ``cv2.waitKey`` returns; -1 = none)."""
    if key is None or key < 0:
        return state, None
    if state.naming:
        if key in ENTER:
            name = state.text.strip()
            if not name:
                return KeyState(), Action("cancel")
            return KeyState(), Action("enroll", name)
        if key == ESC:
            return KeyState(), Action("cancel")
        if key in BACKSPACE:
            return replace(state, text=state.text[:-1]), Action("edit")
        if key >= 32 and key != 127 and key < 0x110000 and chr(key).isprintable():
            if len(state.text) >= 64:
                return state, None
            return replace(state, text=state.text + chr(key)), Action("edit")
        return state, None
    key &= 0xFF
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
