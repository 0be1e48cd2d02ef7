"""The face box, one type for detection, alignment, tracking, drawing and the API."""
from __future__ import annotations

Box = tuple[int, int, int, int]  # x, y, w, h in pixels of the full-size image
