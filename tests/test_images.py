"""realtime.images: every common photo format read as 8-bit BGR (OpenCV first, Pillow for the rest) under
the same size limits, arrays in either channel order, and PIL images from their own mode."""
import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hostile_inputs import png, refusal_script, run_bounded
from realtime.boxes import iou
from realtime.config import AlignmentConfig, DetectionConfig
from realtime.crops import FaceCropper
from realtime.detection import HaarDetector
from realtime.errors import UserError
from realtime.images import IMAGE_SUFFIXES, UnreadableImage, image_size, load_image, read_image, read_photo
from training.data import face_from_photo

DATA = os.environ.get("FACES_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="FACES_DATA not set: point it at the shared data folder")
SETTINGS = DetectionConfig()
SIZE = 60


def picture(height=96, width=128) -> np.ndarray:
    """BGR: a red left half and a blue right half with a gray ramp down: swapped channels or a wrong
    frame cannot pass for it."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (30, 40, 220)        # red (BGR)
    image[:, width // 2:] = (220, 60, 30)         # blue
    image[:, :, 1] = np.linspace(0, 200, height, dtype=np.uint8)[:, None]
    return image


def pillow_bytes(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, **options)
    return out.getvalue()


def rgb(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))


def close(a: np.ndarray, b: np.ndarray, tolerance: float) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(int) - b.astype(int)).mean()) <= tolerance


@pytest.mark.parametrize("name, encode, tolerance", [
    ("gif", lambda im: pillow_bytes(rgb(im).convert("P", palette=Image.ADAPTIVE), format="GIF"), 4),
    ("webp", lambda im: pillow_bytes(rgb(im), format="WEBP", quality=95), 4),
    ("tiff", lambda im: pillow_bytes(rgb(im), format="TIFF", compression="tiff_lzw"), 0),
    ("png16", lambda im: cv2.imencode(".png", im.astype(np.uint16) * 257)[1].tobytes(), 0),
    ("palette.png", lambda im: pillow_bytes(rgb(im).convert("P", palette=Image.ADAPTIVE), format="PNG"), 4),
    ("cmyk.jpg", lambda im: pillow_bytes(rgb(im).convert("CMYK"), format="JPEG", quality=95), 6),
    ("ico", lambda im: pillow_bytes(rgb(im), format="ICO", sizes=[(128, 96)]), 0),   # Pillow only
    ("tga", lambda im: pillow_bytes(rgb(im), format="TGA"), 0),                     # Pillow only
])
def test_common_formats_read_as_bgr(tmp_path, name, encode, tolerance):
    image = picture()
    path = tmp_path / f"photo.{name}"
    path.write_bytes(encode(image))
    decoded = read_image(path)
    assert decoded.dtype == np.uint8 and close(decoded, image, tolerance), name


def test_16_bit_gray_png_keeps_its_levels(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 128).astype(np.uint16), (96, 1))
    path = tmp_path / "gray16.png"
    path.write_bytes(pillow_bytes(Image.fromarray(ramp), format="PNG"))
    decoded = read_image(path)
    assert close(decoded, cv2.cvtColor((ramp >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR), 0)


def test_an_animated_gif_gives_its_first_frame(tmp_path):
    first, second = picture(), picture()[:, ::-1].copy()
    path = tmp_path / "clip.gif"
    path.write_bytes(pillow_bytes(rgb(first), format="GIF", save_all=True, append_images=[rgb(second)], duration=100))
    assert close(read_image(path), first, 4)
    assert ".gif" in IMAGE_SUFFIXES   # folders of GIFs (the Yale faces) are enrolled too


def test_the_pillow_path_keeps_the_size_limits(tmp_path):
    small = tmp_path / "small.tga"
    small.write_bytes(pillow_bytes(rgb(picture(8, 8)), format="TGA"))
    with pytest.raises(UnreadableImage, match="too small to hold a face"):
        read_image(small)
    # A TGA header claiming 30000 x 30000 pixels: refused from the header, nothing decoded.
    data = bytearray(pillow_bytes(rgb(picture(20, 20)), format="TGA"))
    data[12:16] = struct.pack("<HH", 30000, 30000)
    bomb = tmp_path / "bomb.tga"
    bomb.write_bytes(bytes(data))
    with pytest.raises(UnreadableImage, match="too large to decode"):
        read_image(bomb)
    gif = bytearray(pillow_bytes(rgb(picture()).convert("P"), format="GIF"))
    gif[6:10] = struct.pack("<HH", 30000, 30000)
    path = tmp_path / "bomb.gif"
    path.write_bytes(bytes(gif))
    with pytest.raises(UnreadableImage, match=r"too large to decode \(30000x30000"):
        read_image(path)


def test_a_truncated_gif_is_one_line(tmp_path):
    data = pillow_bytes(rgb(picture()).convert("P"), format="GIF")
    path = tmp_path / "cut.gif"
    path.write_bytes(data[:40])
    with pytest.raises(UnreadableImage) as info:
        read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_read_photo_gives_the_files_sha256(tmp_path):
    import hashlib
    path = tmp_path / "a.png"
    path.write_bytes(cv2.imencode(".png", picture())[1].tobytes())
    photo = read_photo(path)
    assert photo.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and close(photo.pixels, picture(), 0)


def test_arrays_in_either_channel_order_and_pil_images_from_their_mode():
    bgr = picture()
    assert np.array_equal(load_image(bgr), bgr)
    assert np.array_equal(load_image(bgr[:, :, ::-1], color="rgb"), bgr)
    assert np.array_equal(load_image(bgr[:, :, ::-1].copy(), color="RGB"), bgr)
    rgba = np.dstack([bgr[:, :, ::-1], np.full(bgr.shape[:2], 255, np.uint8)])
    assert np.array_equal(load_image(rgba, color="rgb"), bgr)
    assert np.array_equal(load_image(rgb(bgr)), bgr)                          # a PIL image: RGB by its mode
    assert np.array_equal(load_image(rgb(bgr), color="rgb"), bgr)             # color is for arrays only
    assert close(load_image(rgb(bgr).convert("CMYK")), bgr, 2)
    gray = load_image(rgb(bgr).convert("L"))
    assert gray.shape == bgr.shape and np.array_equal(gray[:, :, 0], gray[:, :, 2])
    with pytest.raises(UserError, match="'bgr'.*'rgb'"):
        load_image(bgr, color="hsv")


def test_a_pil_image_is_turned_upright_by_its_exif_orientation():
    bgr = picture()
    image = rgb(bgr)
    exif = image.getexif()
    exif[0x0112] = 6                        # "rotate 90 clockwise to view"
    image = Image.open(io.BytesIO(pillow_bytes(image, format="PNG", exif=exif.tobytes())))
    upright = load_image(image)
    assert np.array_equal(upright, cv2.rotate(bgr, cv2.ROTATE_90_CLOCKWISE))


MB = 1024 * 1024


READ_SCRIPT = refusal_script("realtime.images.read_image", "decoded")


def test_png_bomb_30000_squared_is_refused_from_its_header_with_bounded_memory(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png(30000, 30000))
    assert bomb.stat().st_size < 3 * MB  # a small file that claims 900 megapixels
    assert image_size(bomb.read_bytes()) == (30000, 30000)
    out, peak = run_bounded(READ_SCRIPT, bomb)
    assert "refused:" in out and "too large" in out and "max_image_pixels" in out, out
    assert peak < 500, peak


def test_3gb_sparse_jpg_is_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        ok, buf = cv2.imencode(".jpg", np.zeros((32, 32, 3), np.uint8))
        f.write(buf.tobytes())
        f.truncate(3_000_000_000)  # sparse: no disk used
    out, peak = run_bounded(READ_SCRIPT, huge)
    assert "refused:" in out and "over the limit" in out and "max_image_bytes" in out, out
    assert peak < 500, peak


@pytest.mark.parametrize("width, height, words", [(1, 2100, "too small"), (2100, 1, "too small"),
                                                  (2, 60000, "too small"), (40, 2000, "too narrow")])
def test_tiny_and_extreme_aspect_pngs_are_unreadable_not_a_resize_crash(tmp_path, width, height, words):
    path = tmp_path / "strip.png"
    path.write_bytes(png(width, height))
    with pytest.raises(UnreadableImage, match=words):
        read_image(path)


def test_limits_come_from_the_config(tmp_path):
    path = tmp_path / "p.png"
    path.write_bytes(png(200, 100))
    assert read_image(path).shape == (100, 200, 3)
    with pytest.raises(UnreadableImage, match="max_image_pixels"):
        read_image(path, DetectionConfig(max_image_pixels=10_000))
    with pytest.raises(UnreadableImage, match="max_image_bytes"):
        read_image(path, DetectionConfig(max_image_bytes=path.stat().st_size - 1))
    with pytest.raises(UnreadableImage, match="too narrow"):
        read_image(path, DetectionConfig(max_image_aspect=1.5))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp", ".tiff", ".ppm", ".pgm"])
def test_header_sizes_of_every_format_match_what_opencv_decodes(tmp_path, suffix):
    image = np.random.default_rng(1).integers(0, 255, (37, 53, 3), np.uint8)
    if suffix == ".pgm":
        image = image[:, :, 0]
    ok, buf = cv2.imencode(suffix, image)
    assert ok
    assert image_size(buf.tobytes()) == (53, 37)
    path = tmp_path / f"x{suffix}"
    path.write_bytes(buf.tobytes())
    assert read_image(path).shape == (37, 53, 3)


def test_an_unknown_format_is_refused_without_decoding(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"\x00\x01NOT-AN-IMAGE" + bytes(100))   # no format OpenCV or Pillow knows
    with pytest.raises(UnreadableImage, match="not an image this program reads"):
        read_image(path)


def test_fifo_dev_zero_and_symlink_loop_say_what_they_are(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    broken = tmp_path / "broken.jpg"
    broken.symlink_to(tmp_path / "nowhere.jpg")
    for path, words in ((fifo, "FIFO"), (Path("/dev/zero"), "character device"), (loop, "symlink loop"),
                        (tmp_path, "folder")):
        with pytest.raises(UnreadableImage, match=words):
            read_image(path)  # returns at once: a FIFO is never opened for a blocking read
    with pytest.raises(UnreadableImage, match="broken symlink"):
        read_image(broken)


def exif_orientation_jpeg(image: np.ndarray, orientation: int) -> bytes:
    """A JPEG of ``image`` with an APP1 EXIF block holding only the Orientation tag."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + \
        struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    data = buf.tobytes()
    return data[:2] + app1 + data[2:]


@needs_data
def test_exif_orientation_6_portrait_photo_is_read_upright_and_its_face_found(tmp_path):
    photo = sorted((Path(DATA) / "celebrity5/train/madonna").glob("*.jpg"))[0]
    upright = read_image(photo)
    assert HaarDetector(DetectionConfig()).detect(upright)
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # how a phone held upright stores it
    path = tmp_path / "portrait.jpg"
    path.write_bytes(exif_orientation_jpeg(stored, 6))
    raw = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    assert raw.shape[:2] == stored.shape[:2]  # without EXIF handling it would be sideways
    image = read_image(path)
    assert image.shape == upright.shape
    assert np.abs(image.astype(int) - upright.astype(int)).mean() < 8
    assert HaarDetector(DetectionConfig()).detect(image)


@pytest.mark.parametrize("name, data", [
    ("truncated", lambda d: d[: len(d) // 2]),
    ("truncated_tail", lambda d: d[: len(d) - 200]),
    ("header_only", lambda d: d[:20]),
    ("corrupt", lambda d: d[:2] + bytes(len(d) - 2)),
    ("text", lambda d: b"hello, I am text\n" * 10),
    ("empty", lambda d: b""),
])
def test_read_image_bad_files_raise_one_line_unreadable(face_photos, tmp_path, name, data):
    path = tmp_path / f"{name}.jpg"
    path.write_bytes(data(face_photos[0][0].read_bytes()))
    with pytest.raises(UnreadableImage) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert isinstance(info.value, UserError)


def test_read_image_of_a_folder_or_missing_file(tmp_path):
    for path in (tmp_path, tmp_path / "missing.jpg"):
        with pytest.raises(UnreadableImage, match="cannot be read"):
            read_image(path)


def test_png_header_claiming_ten_gigapixels_is_refused_not_a_cv2_traceback(tmp_path):
    """OpenCV raises cv2.error (not None) past CV_IO_MAX_IMAGE_PIXELS; that must stay a user error."""
    ok, buf = cv2.imencode(".png", np.zeros((2, 2, 3), np.uint8))
    data = bytearray(buf.tobytes())
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableImage, match="too large"):
        read_image(path)


def _variants(image):
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    rgba[:10, :10, 3] = 0  # a few transparent pixels, as real RGBA files have
    return {
        "gray8": gray,
        "rgba8": rgba,
        "rgb16": image.astype(np.uint16) * 257,
        "gray16": gray.astype(np.uint16) * 257,
        "rgba16": rgba.astype(np.uint16) * 257,
    }


@pytest.mark.parametrize("variant", ["gray8", "rgba8", "rgb16", "gray16", "rgba16"])
def test_png_variants_decode_to_bgr8_and_the_face_is_found(face_photos, tmp_path, variant):
    path, box = face_photos[0]
    written = _variants(read_image(path))[variant]
    png = tmp_path / f"{variant}.png"
    assert cv2.imwrite(str(png), written)
    assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED).dtype == written.dtype  # really 16-bit / 4-channel
    image = read_image(png)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[:2] == written.shape[:2]
    crop, status, _ = face_from_photo(image, FaceCropper(SETTINGS, AlignmentConfig(method="none"), SIZE))
    assert status == "face" and crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.uint8
    boxes = HaarDetector(SETTINGS).detect(image)
    assert boxes and iou(boxes[0], box) > 0.5
