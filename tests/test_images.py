"""realtime.images: every common photo format read as 8-bit BGR (OpenCV first, Pillow for the rest) under
the same size limits, arrays in either channel order, and PIL images from their own mode."""
import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from realtime.errors import UserError
from realtime.images import IMAGE_SUFFIXES, UnreadableImage, load_image, read_image, read_photo


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
