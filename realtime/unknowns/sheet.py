"""A group's contact sheet: its views' thumbnails in a grid under a title, one PNG to look at
before naming the group (``python -m realtime unknowns show ID``)."""
from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from realtime import text
from realtime.errors import UserError, counted
from realtime.outputs import write_bytes_atomic

log = logging.getLogger("realtime")

SIDE = 112          # each thumbnail's square, in pixels
GAP = 8
TITLE_PX = 16
CAPTION_PX = 11
BACKGROUND = (40, 40, 40)
INK = (235, 235, 235)


def contact_sheet(thumbnails: Sequence[np.ndarray], title: str, captions: Sequence[str] = (),
                  columns: int = 5) -> np.ndarray:
    """A BGR image: ``title`` on top, then the RGB ``thumbnails`` (any size, shown as SIDE-pixel
    squares) in rows of ``columns``, each over its caption (if any)."""
    count = max(len(thumbnails), 1)
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    caption_h = text.size("0:", CAPTION_PX)[1] + 4 if captions else 0
    title_h = text.size(title or " ", TITLE_PX)[1] + 2 * GAP
    cell_h = SIDE + caption_h + GAP
    width = GAP + columns * (SIDE + GAP)
    width = max(width, text.size(title, TITLE_PX)[0] + 2 * GAP) if title else width
    sheet = np.full((title_h + rows * cell_h + GAP, width, 3), BACKGROUND, np.uint8)
    if title:
        text.put(sheet, title, (GAP, GAP), TITLE_PX, INK)
    for k, thumb in enumerate(thumbnails):
        r, c = divmod(k, columns)
        x, y = GAP + c * (SIDE + GAP), title_h + r * cell_h
        sheet[y:y + SIDE, x:x + SIDE] = _square(thumb)
        if k < len(captions) and captions[k]:
            text.put(sheet, captions[k], (x, y + SIDE + 2), CAPTION_PX, INK)
    return sheet


def _square(thumb: np.ndarray) -> np.ndarray:
    """An RGB thumbnail as a SIDE x SIDE BGR square (letterboxed, never stretched)."""
    image = np.asarray(thumb, np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    h, w = image.shape[:2]
    scale = SIDE / max(h, w, 1)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.full((SIDE, SIDE, 3), BACKGROUND, np.uint8)
    y0, x0 = (SIDE - size[1]) // 2, (SIDE - size[0]) // 2
    out[y0:y0 + size[1], x0:x0 + size[0]] = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return out


def write_png(path: str | Path, image: np.ndarray, label: str = "--out") -> Path:
    """Write a BGR image as PNG under a temporary name, renamed into place when complete."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise UserError(f"{label} {path}: the image could not be encoded as PNG")
    write_bytes_atomic(path, data.tobytes(), label)
    return Path(path)


def when(t: float) -> str:
    """A time as local ISO 8601 to the second (what a log line would say)."""
    return datetime.datetime.fromtimestamp(t).isoformat(timespec="seconds")


def group_sheet(unknowns, group_id: int) -> tuple[np.ndarray, int]:
    """The contact sheet of a stored group (``gallery.unknowns``): its views' thumbnails, best first,
    each captioned with when it was seen and its quality; and how many views it shows (a damaged
    thumbnail is named in a warning and left out)."""
    from realtime.gallery.unknowns import decode_image
    group = unknowns.group(group_id)
    thumbs, captions = [], []
    for view in unknowns.views(group_id):
        image = decode_image(view.thumbnail)
        if image is None:
            log.warning("unknown group %d: view %d's thumbnail is damaged: left out", group_id, view.id)
            continue
        thumbs.append(image)
        captions.append(f"{when(view.seen)[11:]}  q {view.quality:.2f}")
    first, last = when(group.first_seen), when(group.last_seen)
    span = f"{first} to {last[11:] if last[:10] == first[:10] else last}".replace("T", " ")
    title = f"unknown #{group.id}: {counted(group.views, 'view')}, {counted(group.tracks, 'track')}, {span}"
    return contact_sheet(thumbs, title, captions), len(thumbs)
