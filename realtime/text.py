"""Text drawn as it is written (Zoë, José, Dvořák, 李小龍) with FreeType, through matplotlib's ft2font.

OpenCV's Hershey fonts know ASCII only and this OpenCV has no FreeType module; matplotlib (a
dependency already) ships FreeType and DejaVu Sans. Characters DejaVu Sans lacks come from a CJK
font where one is installed (Noto CJK, WenQuanYi, Droid Sans Fallback...); a character no font
has is drawn as a boxed ``?``, so a name is never silently changed on screen. Each distinct
(text, size) is rendered once and its mask cached: drawing a label is a blend of a small array.
"""
from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import unicodedata
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.ft2font import FT2Font

log = logging.getLogger(__name__)

PRIMARY = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
# Tried in order when DejaVu Sans lacks a character; then whatever fontconfig lists for Chinese.
FALLBACKS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
CACHE_SIZE = 1024


@functools.lru_cache(maxsize=None)
def _font(path: str) -> FT2Font:
    return FT2Font(path)


@functools.lru_cache(maxsize=1)
def fallback_font() -> str | None:
    """The first installed font that has CJK characters, looked for once, when first needed."""
    candidates = [p for p in FALLBACKS if Path(p).is_file()]
    if shutil.which("fc-list"):
        try:
            listed = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10)
            candidates += sorted(line.split(":")[0].strip() for line in listed.stdout.splitlines() if line.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    for path in candidates:
        try:
            if _font(path).get_char_index(ord("李")):
                log.debug("fallback font for characters DejaVu Sans lacks: %s", path)
                return path
        except (OSError, RuntimeError, ValueError):
            continue
    log.info("no CJK font installed (e.g. fonts-noto-cjk): characters DejaVu Sans lacks are drawn as a boxed ?")
    return None


def _font_for(char: str, primary: str, fallbacks: tuple[str, ...]) -> str | None:
    for path in (primary, *fallbacks):
        if _font(path).get_char_index(ord(char)):
            return path
    return None


def _runs(text: str, primary: str, fallbacks: tuple[str, ...] | None) -> list[tuple[str | None, str]]:
    """``text`` cut into (font path, characters) runs; None for characters no font has.
    ``fallbacks`` None: the installed CJK font, looked for only when a character needs it."""
    runs: list[tuple[str | None, str]] = []
    for char in text:
        path = _font_for(char, primary, fallbacks or ())
        if path is None and fallbacks is None:
            fallbacks = (fallback_font(),) if fallback_font() else ()
            path = _font_for(char, primary, fallbacks)
        if runs and runs[-1][0] == path and path is not None:
            runs[-1] = (path, runs[-1][1] + char)
        else:
            runs.append((path, char))
    return runs


def _render_run(path: str, text: str, px: int) -> tuple[np.ndarray, int]:
    """(alpha mask, baseline row) of ``text`` in one font at ``px`` pixels per em."""
    font = _font(path)
    font.set_size(px, 72)                      # 72 dpi: one point is one pixel
    font.set_text(text, 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    image = np.asarray(font.get_image()).copy()
    descent = int(round(font.get_descent() / 64))
    width = max(image.shape[1], int(np.ceil(font.get_width_height()[0] / 64)))
    if image.shape[1] < width:
        image = np.pad(image, ((0, 0), (0, width - image.shape[1])))
    return image, image.shape[0] - descent


def _missing_box(px: int) -> tuple[np.ndarray, int]:
    """A boxed ``?`` one character wide, for a character no installed font has."""
    width, height = max(5, int(px * 0.62)), max(7, int(px * 0.78))
    line = max(1, px // 14)
    box = np.zeros((height, width), np.uint8)
    box[:line, :] = box[-line:, :] = box[:, :line] = box[:, -line:] = 255
    mark, _ = _render_run(str(PRIMARY), "?", max(6, int(px * 0.6)))
    mh, mw = min(mark.shape[0], height - 2 * line), min(mark.shape[1], width - 2 * line)
    y, x = (height - mh) // 2, (width - mw) // 2
    box[y:y + mh, x:x + mw] = np.maximum(box[y:y + mh, x:x + mw], mark[:mh, :mw])
    bearing = max(1, px // 16)                  # a gap between neighbouring boxes
    return np.pad(box, ((0, 0), (bearing, bearing))), height


@functools.lru_cache(maxsize=CACHE_SIZE)
def render(text: str, px: int, primary: str = str(PRIMARY),
           fallbacks: tuple[str, ...] | None = None) -> tuple[np.ndarray, int]:
    """``text`` at ``px`` pixels per em as a read-only alpha mask (0..255), and its baseline row.

    The line's height is the primary font's ascent + descent, so labels of one size line up
    whatever their letters. ``fallbacks`` supply characters the primary font lacks (default:
    an installed CJK font, found when first needed; ``()``: none)."""
    text = "".join(c for c in unicodedata.normalize("NFC", text) if c.isprintable())
    px = max(6, int(px))
    font = _font(primary)
    ascent = int(np.ceil(font.ascender / font.units_per_EM * px))
    descent = int(np.ceil(-font.descender / font.units_per_EM * px))
    pieces = [_render_run(path, chars, px) if path is not None else _missing_box(px)
              for path, chars in _runs(text, primary, fallbacks)] if text else []
    ascent = max([ascent] + [base for _, base in pieces])
    descent = max([descent] + [img.shape[0] - base for img, base in pieces])
    width = sum(img.shape[1] for img, _ in pieces)
    mask = np.zeros((ascent + descent, max(width, 1)), np.uint8)
    x = 0
    for img, base in pieces:
        y = ascent - base
        mask[y:y + img.shape[0], x:x + img.shape[1]] = np.maximum(mask[y:y + img.shape[0], x:x + img.shape[1]], img)
        x += img.shape[1]
    mask.setflags(write=False)
    return mask, ascent


def size(text: str, px: int) -> tuple[int, int]:
    """(width, height) in pixels of ``text`` at ``px``, as :func:`put` draws it (without padding)."""
    mask, _ = render(text, px)
    return mask.shape[1], mask.shape[0]


def put(frame: np.ndarray, text: str, top_left: tuple[int, int], px: int, color: tuple[int, int, int],
        background: tuple[int, int, int] | None = None, pad: int = 0) -> tuple[int, int]:
    """Draw ``text`` with its box's top-left corner at ``top_left`` (clipped to the frame);
    with ``background``, on a filled box ``pad`` pixels larger all round. Returns the box size."""
    x, y = int(top_left[0]), int(top_left[1])
    if background is not None:        # a cached picture of the label: drawing it is one copy
        patch = _label(text, int(px), tuple(color), tuple(background), int(pad))
        _paste(frame, patch, x, y)
        return patch.shape[1], patch.shape[0]
    mask, _ = render(text, px)
    _blend(frame, mask, x + pad, y + pad, color)
    return mask.shape[1] + 2 * pad, mask.shape[0] + 2 * pad


@functools.lru_cache(maxsize=CACHE_SIZE)
def _label(text: str, px: int, color: tuple, background: tuple, pad: int) -> np.ndarray:
    """``text`` in ``color`` on ``background`` as a BGR picture (the mask mapped through a colour ramp)."""
    mask, _ = render(text, px)
    ramp = np.linspace(0.0, 1.0, 256)[:, None]
    lut = np.round(np.asarray(background, float) * (1 - ramp) + np.asarray(color, float) * ramp).astype(np.uint8)
    patch = np.empty((mask.shape[0] + 2 * pad, mask.shape[1] + 2 * pad, 3), np.uint8)
    patch[:] = np.asarray(background, np.uint8)
    patch[pad:pad + mask.shape[0], pad:pad + mask.shape[1]] = lut[mask]
    patch.setflags(write=False)
    return patch


def _paste(frame, patch, x, y) -> None:
    fh, fw = frame.shape[:2]
    h, w = patch.shape[:2]
    xa, ya, xb, yb = max(0, x), max(0, y), min(fw, x + w), min(fh, y + h)
    if xa < xb and ya < yb:
        frame[ya:yb, xa:xb] = patch[ya - y:yb - y, xa - x:xb - x]


def _blend(frame, mask, x, y, color) -> None:
    fh, fw = frame.shape[:2]
    h, w = mask.shape
    xa, ya, xb, yb = max(0, x), max(0, y), min(fw, x + w), min(fh, y + h)
    if xa >= xb or ya >= yb:
        return
    alpha = mask[ya - y:yb - y, xa - x:xb - x, None].astype(np.float32) / 255.0
    region = frame[ya:yb, xa:xb]
    region[:] = (region * (1.0 - alpha) + np.asarray(color, np.float32) * alpha).astype(np.uint8)
