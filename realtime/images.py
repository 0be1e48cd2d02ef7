"""Reading a photo: the one place a file becomes an 8-bit BGR image (training and the live program).

Untrusted files are checked before they cost anything: the file size before reading, the
dimensions in the header before decoding (a 2.6 MB PNG can claim 30000 x 30000 pixels), and
images too small or too narrow to hold a face are refused rather than crashing a resize later.
Decoding applies the EXIF orientation, so a portrait phone photo is upright.
"""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from realtime.config import DetectionConfig
from realtime.errors import UserError
from realtime.paths import NotReadable, read_regular_file

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"})

# Keep 16-bit depth and gray/colour as stored; unlike IMREAD_UNCHANGED these flags apply EXIF orientation.
DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR

FORMATS = "JPEG, PNG, BMP, WebP, TIFF, PBM/PGM/PPM"


class UnreadableImage(UserError):
    """A file that exists but does not decode as an image."""


def read_image(path: str | Path, settings: DetectionConfig | None = None) -> np.ndarray:
    """Decode a photo to 8-bit BGR (grayscale, RGBA and 16-bit included), upright per its EXIF.

    Every way a file can fail to be a usable image (missing, a folder, a FIFO, text named .jpg,
    corrupt, truncated, too large, too small, too narrow) is one :class:`UnreadableImage`
    naming the file, never a ``cv2.error`` traceback. Limits come from ``settings``
    (``detection.max_image_bytes`` and friends; defaults when None).
    """
    path = Path(path)
    limits = settings or DetectionConfig()
    try:
        data = read_regular_file(path, "image", limits.max_image_bytes)
    except NotReadable as err:
        limit = " (detection.max_image_bytes)" if "limit" in err.reason else ""
        said = f"it {err.reason}" if err.reason.startswith("is ") else err.reason
        raise UnreadableImage(f"{path}: cannot be read: {said}{limit}") from None
    if not data:
        raise UnreadableImage(f"{path}: not an image: the file is empty")
    size = image_size(data)
    if size is None:
        raise UnreadableImage(f"{path}: not an image this program reads ({FORMATS}), or a corrupt one")
    check_size(path, size, limits)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), DECODE_FLAGS)
    except cv2.error as err:
        # OpenCV asserts (rather than returning None) on headers past CV_IO_MAX_IMAGE_PIXELS.
        too_big = "MAX_IMAGE_PIXELS" in str(err)
        raise UnreadableImage(f"{path}: " + ("image is too large to decode: shrink it"
                                             if too_big else "not an image, or a corrupt one")) from None
    except MemoryError:
        raise UnreadableImage(f"{path}: not enough memory to decode this image: shrink it") from None
    if image is None or image.size == 0:
        raise UnreadableImage(f"{path}: not an image, or a corrupt or truncated one")
    return to_bgr8(image)


def check_size(path: Path, size: tuple[int, int], limits: DetectionConfig) -> None:
    """Refuse a header's ``(width, height)`` that is too large, too small or too narrow for a face."""
    width, height = size
    if width <= 0 or height <= 0:
        raise UnreadableImage(f"{path}: not an image, or a corrupt one (header says {width}x{height} pixels)")
    if width * height > limits.max_image_pixels:
        raise UnreadableImage(f"{path}: image is too large to decode ({width}x{height} = {width * height:,} "
                              f"pixels, over detection.max_image_pixels = {limits.max_image_pixels:,}): shrink it")
    if min(width, height) < limits.min_image_side:
        raise UnreadableImage(f"{path}: image is too small to hold a face ({width}x{height} pixels, under "
                              f"detection.min_image_side = {limits.min_image_side})")
    if max(width, height) > limits.max_image_aspect * min(width, height):
        raise UnreadableImage(f"{path}: image is too narrow to hold a face ({width}x{height} pixels, more than "
                              f"detection.max_image_aspect = {limits.max_image_aspect:g} to 1)")


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the header of a JPEG, PNG, BMP, WebP, TIFF or PNM file; None if not one.

    Reads only header fields, so it costs nothing whatever the image claims to be.
    """
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM" and len(data) >= 26:
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return width, abs(height)  # a negative height is a top-down bitmap
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
        if data[:1] == b"P" and data[1:2] in b"123456":
            return _pnm_size(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The frame header (SOFn) after any number of APPn segments (EXIF thumbnails can be large)."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:  # end of image or scan data before any frame header
            return None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first IFD: the page OpenCV decodes."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset:offset + 2])
    found: dict[int, int] = {}
    for k in range(min(count, 4096)):
        entry = data[offset + 2 + 12 * k: offset + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    """Width and height: the first two numbers after the magic, past whitespace and # comments."""
    numbers: list[int] = []
    i = 2
    while len(numbers) < 2 and i < min(len(data), 4096):
        c = data[i:i + 1]
        if c == b"#":
            end = data.find(b"\n", i)
            i = len(data) if end < 0 else end + 1
        elif c.isdigit():
            j = i
            while j < len(data) and data[j:j + 1].isdigit() and j - i < 12:
                j += 1
            numbers.append(int(data[i:j]))
            i = j
        elif c.isspace():
            i += 1
        else:
            return None
    return (numbers[0], numbers[1]) if len(numbers) == 2 else None


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Normalise a decoded image to contiguous 3-channel uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        # Float images are [0, 1] or [0, 255]; NaN must not become an arbitrary byte.
        values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        peak = float(values.max()) if values.size else 0.0
        image = np.clip(values * (255.0 if peak <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] in (1, 2):  # gray, or gray + alpha
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image[:, :, :3])


def load_image(image: "str | Path | np.ndarray", settings: DetectionConfig | None = None) -> np.ndarray:
    """A BGR uint8 array from a path (any common format, one-line errors) or an array (normalised)."""
    if isinstance(image, np.ndarray):
        return to_bgr8(image)
    return read_image(image, settings)
