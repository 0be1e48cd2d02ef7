"""Face boxes: the one type shared by detection, alignment, tracking, drawing and the API, and
the geometry on it (pure functions, no OpenCV)."""
from __future__ import annotations

from typing import Iterable, Sequence

Box = tuple[int, int, int, int]  # x, y, w, h in pixels of the full-size image


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes (0 when they do not touch)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def clip_box(box: Sequence[int], shape: Sequence[int]) -> Box:
    """Clip a box to an image of ``shape`` (rows, cols, ...) so cropping never wraps or fails."""
    x, y, w, h = (int(v) for v in box)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(int(shape[1]), x + w), min(int(shape[0]), y + h)
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def sort_largest_first(boxes: Iterable[Box]) -> list[Box]:
    """Non-empty boxes, largest area first (the order every detector returns)."""
    return sorted((b for b in boxes if b[2] > 0 and b[3] > 0), key=lambda b: b[2] * b[3], reverse=True)


def center_box(shape: Sequence[int], fraction: float) -> Box:
    """A centred square covering ``fraction`` of the shorter side: the fallback for face-centred sets."""
    height, width = int(shape[0]), int(shape[1])
    side = max(1, int(round(min(height, width) * fraction)))
    return ((width - side) // 2, (height - side) // 2, side, side)


def scale_box(box: Sequence[float], factor: float) -> Box:
    """A box found on an image resized by ``factor``, in the original image's pixels."""
    return tuple(int(round(v / factor)) for v in box)  # type: ignore[return-value]


def contains_point(box: Sequence[float], x: float, y: float) -> bool:
    bx, by, bw, bh = box
    return bx <= x <= bx + bw and by <= y <= by + bh
