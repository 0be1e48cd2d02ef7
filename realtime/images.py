"""Reading a photo: the one place a file becomes an 8-bit BGR image (training and the live program).

Untrusted files are checked before they cost anything: the file size before reading, the
dimensions in the header before decoding (a 2.6 MB PNG can claim 30000 x 30000 pixels), and
images too small or too narrow to hold a face are refused rather than crashing a resize later.
Decoding applies the EXIF orientation, so a portrait phone photo is upright. OpenCV decodes what
it can; what it cannot (a GIF on an OpenCV without a GIF decoder, an ICO, a PCX ...) is decoded by
Pillow, under the same limits (Pillow reads the size from the header before it decodes).

Arrays come in OpenCV's channel order (BGR) unless ``color="rgb"`` says otherwise (face_recognition,
PIL and matplotlib give RGB); a PIL image carries its own mode and is converted from it.
"""
from __future__ import annotations

import hashlib
import io
import struct
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.config import DetectionConfig
from realtime.errors import UserError
from realtime.paths import NotReadable, read_regular_file

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                            ".pgm", ".ppm", ".pbm"})

# Keep 16-bit depth and gray/colour as stored; unlike IMREAD_UNCHANGED these flags apply EXIF orientation.
DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR

FORMATS = "JPEG, PNG, GIF, BMP, WebP, TIFF, PBM/PGM/PPM, or another format Pillow reads"

# The channel orders an array may come in: OpenCV's (cv2.imread) or everyone else's (PIL, matplotlib,
# face_recognition.load_image_file, imageio).
COLOR_ORDERS = ("bgr", "rgb")


class UnreadableImage(UserError):
    """A file that exists but does not decode as an image."""


@dataclass(frozen=True)
class Photo:
    """A decoded photo file and the SHA-256 of its bytes (what makes "the same photo" for enrolment)."""

    pixels: np.ndarray   # 8-bit BGR
    sha256: str


def read_image(path: str | Path, settings: DetectionConfig | None = None) -> np.ndarray:
    """Decode a photo to 8-bit BGR (grayscale, RGBA, palette, CMYK and 16-bit included; a GIF's first
    frame), upright per its EXIF.

    Every way a file can fail to be a usable image (missing, a folder, a FIFO, text named .jpg,
    corrupt, truncated, too large, too small, too narrow) is one :class:`UnreadableImage`
    naming the file, never a ``cv2.error`` traceback. Limits come from ``settings``
    (``detection.max_image_bytes`` and friends; defaults when None).
    """
    path = Path(path)
    limits = settings or DetectionConfig()
    return decode_image(_read_image_bytes(path, limits), path, limits)


def read_photo(path: str | Path, settings: DetectionConfig | None = None) -> Photo:
    """:func:`read_image`, with the SHA-256 of the file's bytes."""
    path = Path(path)
    limits = settings or DetectionConfig()
    data = _read_image_bytes(path, limits)
    return Photo(decode_image(data, path, limits), hashlib.sha256(data).hexdigest())


def _read_image_bytes(path: Path, limits: DetectionConfig) -> bytes:
    """The bytes of a photo file, refused (as :class:`UnreadableImage`) past ``detection.max_image_bytes``,
    when not a regular readable file, or when empty."""
    try:
        data = read_regular_file(path, "image", limits.max_image_bytes)
    except NotReadable as err:
        limit = " (detection.max_image_bytes)" if "limit" in err.reason else ""
        said = f"it {err.reason}" if err.reason.startswith("is ") else err.reason
        raise UnreadableImage(f"{path}: cannot be read: {said}{limit}") from None
    if not data:
        raise UnreadableImage(f"{path}: not an image: the file is empty")
    return data


def decode_image(data: bytes, path: Path, limits: DetectionConfig) -> np.ndarray:
    """The bytes of a photo file as 8-bit BGR: OpenCV for the formats whose header is read here, Pillow
    for the rest and for what this OpenCV cannot decode; the header's size is checked first either way."""
    size = image_size(data)
    if size is None:
        return _decode_with_pillow(data, path, limits)
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
        if data[:6] in (b"GIF87a", b"GIF89a"):   # OpenCV before 4.11 has no GIF decoder
            return _decode_with_pillow(data, path, limits)
        raise UnreadableImage(f"{path}: not an image, or a corrupt or truncated one")
    return to_bgr8(image)


def _decode_with_pillow(data: bytes, path: Path, limits: DetectionConfig) -> np.ndarray:
    """A format OpenCV does not read here, by Pillow: its size from the header before anything is decoded."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:   # Pillow comes with matplotlib; without it, the formats OpenCV reads
        raise UnreadableImage(f"{path}: not an image this program reads ({FORMATS}), or a corrupt one") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)   # our own limits decide
            opened = Image.open(io.BytesIO(data))   # lazy: reads the header only
            check_size(path, opened.size, limits)
            opened.seek(0)                          # a GIF's or TIFF's first frame
            opened.load()
            return pillow_to_bgr(opened)
    except UnidentifiedImageError:
        raise UnreadableImage(f"{path}: not an image this program reads ({FORMATS}), or a corrupt one") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage(f"{path}: image is too large to decode: shrink it") from None
    except MemoryError:
        raise UnreadableImage(f"{path}: not enough memory to decode this image: shrink it") from None
    except UnreadableImage:
        raise
    except Exception:   # Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error ... on bad data
        raise UnreadableImage(f"{path}: not an image, or a corrupt or truncated one") from None


def pillow_to_bgr(image) -> np.ndarray:
    """A PIL image (any mode: L, LA, P, RGB, RGBA, CMYK, YCbCr, I;16, I, F, 1) as 8-bit BGR, upright per
    its EXIF orientation."""
    from PIL import ImageOps
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA") or mode.startswith(("I;16", "I", "F")):
        pixels = np.asarray(image)
        if mode.startswith("I"):   # 16- or 32-bit integers: 16-bit samples as OpenCV reads them
            pixels = np.clip(pixels.astype(np.int64), 0, 65535).astype(np.uint16)
    else:                           # P, PA, CMYK, YCbCr, LAB, HSV, 1: Pillow converts them itself
        pixels = np.asarray(image.convert("RGBA" if "A" in mode or "transparency" in image.info else "RGB"))
    return to_bgr8(swap_red_blue(pixels))


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
    """``(width, height)`` from the header of a JPEG, PNG, GIF, BMP, WebP, TIFF or PNM file; None if not one.

    Reads only header fields, so it costs nothing whatever the image claims to be.
    """
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:   # the logical screen
            return struct.unpack("<HH", data[6:10])
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


def swap_red_blue(pixels: np.ndarray) -> np.ndarray:
    """RGB(A) <-> BGR(A); gray (2-D, or 1-2 channels) as it is."""
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        return pixels[:, :, [2, 1, 0, 3][:pixels.shape[2]]]
    return pixels


def check_color(color: str) -> str:
    """``"bgr"`` or ``"rgb"`` (any case), else a UserError saying which are taken."""
    order = color.lower() if isinstance(color, str) else color
    if order not in COLOR_ORDERS:
        raise UserError(f"color={color!r}: an array's channel order is 'bgr' (OpenCV's, cv2.imread) or 'rgb' "
                        f"(PIL, matplotlib, face_recognition)")
    return order


def is_pillow_image(image) -> bool:
    """A PIL image, told without importing Pillow (a caller who made one has imported it)."""
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(image, pil.Image)


def load_image(image: "str | Path | np.ndarray", settings: DetectionConfig | None = None,
               color: str = "bgr") -> np.ndarray:
    """A BGR uint8 array from a path (any common format, one-line errors), a PIL image (converted from its
    mode) or an array in the channel order ``color`` says: ``"bgr"`` (OpenCV's, the default) or ``"rgb"``
    (PIL, matplotlib, face_recognition). A file or a PIL image carries its own order; ``color`` is for arrays."""
    order = check_color(color)
    if isinstance(image, np.ndarray):
        return to_bgr8(image if order == "bgr" else swap_red_blue(image))
    if is_pillow_image(image):
        return pillow_to_bgr(image)
    return read_image(image, settings)


def pixels_sha256(image: np.ndarray) -> str:
    """The SHA-256 of an image's pixels and shape: "the same photo" for an array with no file behind it."""
    image = np.ascontiguousarray(image)
    return hashlib.sha256(repr((image.shape, image.dtype.str)).encode() + image.tobytes()).hexdigest()
