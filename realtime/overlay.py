"""Drawing on the frame: boxes, names and distances, FPS, threshold, key help, prompts.

OpenCV's Hershey fonts only know ASCII, so names are transliterated (accents dropped) and any
other character is drawn as ``?``; the gallery and the events keep the exact Unicode name.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

GREEN = (0, 200, 0)
RED = (0, 0, 230)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
YELLOW = (0, 220, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
HELP = "e: enroll  space: pause  +/-: threshold  q: quit"


@dataclass(frozen=True)
class FaceLabel:
    box: tuple[int, int, int, int]
    name: str | None        # voted name, None = unknown
    distance: float


def drawable(text: str) -> str:
    """Best ASCII rendering of a Unicode string for cv2.putText."""
    decomposed = unicodedata.normalize("NFKD", text)
    out = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        out.append(ch if 32 <= ord(ch) < 127 else "?")
    return "".join(out)


def _text(frame, text, org, scale, color, thickness=1, bg=BLACK):
    """Text on a filled background so it reads over any image."""
    text = drawable(text)
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = int(org[0]), int(org[1])
    cv2.rectangle(frame, (x, y - h - base), (x + w, y + base), bg, cv2.FILLED)
    cv2.putText(frame, text, (x, y), FONT, scale, color, thickness, cv2.LINE_AA)


def draw(frame: np.ndarray, faces: Sequence[FaceLabel], *, fps: float | None, threshold: float,
         prompt: str | None = None, message: str | None = None, paused: bool = False,
         help_line: bool = True) -> np.ndarray:
    """Annotate ``frame`` in place (and return it)."""
    height, width = frame.shape[:2]
    scale = max(0.4, min(1.0, width / 1000.0))
    thick = 1 if width < 900 else 2
    for face in faces:
        x, y, w, h = face.box
        color = GREEN if face.name is not None else RED
        cv2.rectangle(frame, (x, y), (x + w, y + h), color, 2)
        label = face.name if face.name is not None else "Unknown"
        if np.isfinite(face.distance):  # inf: nobody enrolled yet
            label += f" {face.distance:.2f}"
        _text(frame, label, (x, max(int(20 * scale) + 4, y - 6)), scale * 0.7, WHITE, thick, bg=color)
    status = f"threshold {threshold:.2f}"
    if fps is not None:
        status = f"{fps:5.1f} fps  " + status
    if paused:
        status += "  PAUSED"
    _text(frame, status, (6, int(24 * scale) + 4), scale * 0.6, WHITE, thick)
    if help_line:
        _text(frame, HELP, (6, height - 8), scale * 0.5, WHITE, 1)
    if prompt is not None:
        _text(frame, prompt, (6, height // 2), scale * 0.8, YELLOW, thick)
    if message:
        _text(frame, message, (6, height // 2 + int(36 * scale)), scale * 0.7, YELLOW, thick)
    return frame
