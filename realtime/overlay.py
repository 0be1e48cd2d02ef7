"""Drawing on the frame: boxes with names and distances (the annotation a recording keeps), and the
HUD around them (FPS, threshold, key help, the name prompt, messages, PAUSED).

Text goes through :mod:`realtime.text`, so names are drawn exactly as written, and its size
follows the frame's (readable at 480p and at 1080p). Each distinct label is rendered once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from realtime import text
from realtime.boxes import Box

GREEN = (0, 200, 0)
RED = (0, 0, 230)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
YELLOW = (0, 220, 255)
AMBER = (0, 140, 230)
HELP = "e: enroll   space: pause   +/-: threshold   q: quit"
# With --collect-unknown the n key names the Unknown face under the mouse (or the largest).
HELP_NAMING = "e: enroll   n: name unknown   space: pause   +/-: threshold   q: quit"
ENDED = "end of the video: press any key to close"


@dataclass(frozen=True)
class FaceLabel:
    box: Box
    name: str | None          # the name shown, None = not named
    distance: float
    deciding: str | None = None   # not named yet, but within the threshold of this person: the vote is out
    unknown: int | None = None    # its unknown group, once kept (--collect-unknown): "Unknown #3"


def unit(frame: np.ndarray) -> float:
    """Text and line size relative to a 480-line frame (1.0 at 640x480, 2.25 at 1920x1080)."""
    height, width = frame.shape[:2]
    return max(0.5, min(height, width * 0.75) / 480.0)


def _px(frame: np.ndarray, size: float) -> int:
    return max(12, int(round(size * unit(frame))))


def _fitting(frame: np.ndarray, line: str, px: int, margin: int) -> int:
    """``px``, made smaller if ``line`` would not fit across the frame."""
    width = text.size(line, px)[0]
    room = frame.shape[1] - 2 * margin
    return px if width <= room else max(8, int(px * room / width))


@functools.lru_cache(maxsize=64)
def wrap(line: str, px: int, room: int) -> tuple[str, ...]:
    """``line`` in pieces that each fit ``room`` pixels at ``px``: broken at spaces where it can be, inside a
    word longer than a whole line (a 64-character name), so no text runs off the frame and none is shrunk
    past reading."""
    pieces: list[str] = []
    rest = line
    while rest:
        if text.size(rest, px)[0] <= room:
            pieces.append(rest)
            break
        lo, hi = 1, len(rest)          # the longest start of ``rest`` that fits (at least one character)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if text.size(rest[:mid], px)[0] <= room:
                lo = mid
            else:
                hi = mid - 1
        space = rest.rfind(" ", 0, lo + 1)
        cut = space if space > 0 else lo
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return tuple(pieces)


def draw_faces(frame: np.ndarray, faces: Sequence[FaceLabel]) -> np.ndarray:
    """Boxes (green: named, amber: deciding, red: unknown) with the name and distance above each; in place."""
    u = unit(frame)
    thick = max(2, int(round(2 * u)))
    px = _px(frame, 20)
    pad = max(2, int(3 * u))
    for face in faces:
        x, y, w, h = face.box
        if face.name is not None:
            color, label = GREEN, face.name
        elif face.deciding is not None:
            color, label = AMBER, f"{face.deciding}?"
        else:
            color, label = RED, "Unknown" if face.unknown is None else f"Unknown #{face.unknown}"
        cv2.rectangle(frame, (x, y), (x + w, y + h), color, thick)
        if np.isfinite(face.distance):  # inf: nobody enrolled yet
            label += f" {face.distance:.2f}"
        label_h = text.size(label, px)[1] + 2 * pad
        top = y - label_h if y - label_h >= 0 else y + h      # above the box, or below it at the top edge
        text.put(frame, label, (x - thick // 2, top), px, WHITE, background=color, pad=pad)
    return frame


def draw_hud(frame: np.ndarray, *, fps: float | None, threshold: float | None, prompt: str | None = None,
             message: str | None = None, paused: bool = False, help_line: bool = True,
             ended: bool = False, naming: bool = False) -> np.ndarray:
    """The status line (FPS, threshold), key help (``naming``: with the n key), name prompt, message and
    PAUSED; in place.

    Everything but the status line stacks up from the bottom edge, clear of the middle of the frame
    where the faces are; the name being typed and messages wrap onto more lines rather than run off
    the frame or shrink past reading."""
    height, width = frame.shape[:2]
    u = unit(frame)
    margin, pad = max(4, int(6 * u)), max(2, int(3 * u))
    x = margin
    if fps is not None:  # whole fps: a few distinct labels, each rendered once
        x += text.put(frame, f"{fps:.0f} fps", (x, margin), _px(frame, 16), WHITE, BLACK, pad)[0] + pad
    if threshold is not None:
        text.put(frame, f"threshold {threshold:.2f}", (x, margin), _px(frame, 16), WHITE, BLACK, pad)
    bottom = height - margin                 # lines stack upwards from the bottom edge, clear of the faces
    if help_line:
        keys = HELP_NAMING if naming else HELP
        px = _fitting(frame, keys, _px(frame, 15), margin + pad)
        bottom -= text.size(keys, px)[1] + 2 * pad
        text.put(frame, keys, (margin, bottom), px, WHITE, BLACK, pad)
        bottom -= pad
    if paused or ended:
        banner = "PAUSED" if paused else ENDED
        px = _fitting(frame, banner, _px(frame, 32 if paused else 22), margin + pad)
        w, h = text.size(banner, px)
        bottom -= h + 2 * pad
        text.put(frame, banner, ((width - w) // 2 - pad, bottom), px, YELLOW, BLACK, pad)
        bottom -= pad
    px = _px(frame, 20)
    pieces = [piece for line in (message, prompt) if line
              for piece in wrap(line, px, width - 2 * (margin + pad))]
    heights = [text.size(piece, px)[1] + 2 * pad for piece in pieces]
    y = bottom - sum(heights) - pad * max(0, len(pieces) - 1)
    for piece, h in zip(pieces, heights):
        text.put(frame, piece, (margin, y), px, YELLOW, BLACK, pad)
        y += h + pad
    return frame


def draw(frame: np.ndarray, faces: Sequence[FaceLabel], *, fps: float | None, threshold: float,
         prompt: str | None = None, message: str | None = None, paused: bool = False,
         help_line: bool = True) -> np.ndarray:
    """Faces and HUD together (what the window shows)."""
    draw_faces(frame, faces)
    return draw_hud(frame, fps=fps, threshold=threshold, prompt=prompt, message=message, paused=paused,
                    help_line=help_line)
