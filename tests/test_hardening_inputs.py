"""Issue 13, the input side: photos, configs, encoder.json, names and thresholds that an attacker
or a clumsy user hands the program. Every input is generated here in a tmp folder; the memory
cases run in a subprocess whose peak RSS is bounded."""
import json
import os
import struct
import subprocess
import sys
import unicodedata
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.config import DetectionConfig, camera_index, load_config
from realtime.encoder import read_model_info
from realtime.errors import UserError, run_command, shorten
from realtime.detection import HaarDetector
from realtime.images import UnreadableImage, image_size, read_image
from realtime.names import MAX_NAME_LENGTH, check_name
from realtime.thresholds import KEY_CAP, ThresholdPolicy, check_threshold, key_cap, step_threshold

ROOT = Path(__file__).resolve().parent.parent
DATA = os.environ.get("FACES_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="FACES_DATA not set: point it at the shared data folder")
MB = 1024 * 1024


def png(width: int, height: int, rows=None, color_type: int = 0) -> bytes:
    """A valid 8-bit PNG; ``rows`` None: all-zero rows compressed row by row (a bomb costs ~1 s, no RAM)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    channels = {0: 1, 2: 3}[color_type]
    packer = zlib.compressobj(9)
    row = bytes(1 + width * channels)
    data = b"".join(packer.compress(row if rows is None else b"\0" + rows[y].tobytes()) for y in range(height))
    data += packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


WRAPPER = r"""
import json, resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120)
print(json.dumps({"rc": run.returncode, "out": run.stdout, "err": run.stderr[-4000:],
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_bounded(code: str, *args, timeout=150):
    """Run ``code`` in a fresh interpreter under a wrapper whose only child it is, so the wrapper's
    ``getrusage(RUSAGE_CHILDREN)`` is exactly that run's peak RSS. Returns (stdout, peak MiB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    wrapper = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-c", code, *map(str, args)],
                             capture_output=True, text=True, env=env, timeout=timeout)
    assert wrapper.returncode == 0, wrapper.stderr[-2000:]
    result = json.loads(wrapper.stdout)
    assert result["rc"] == 0, result["err"]
    return result["out"], result["peak_mb"]


READ_SCRIPT = r"""
import resource, sys
from realtime.images import read_image, UnreadableImage
try:
    read_image(sys.argv[1])
    print("decoded")
except UnreadableImage as err:
    print("refused:", err)
"""


# -- photos ----------------------------------------------------------------------------------------
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


def test_photo_arguments_name_a_fifo_or_loop_in_the_cli(tmp_path, capsys):
    from realtime.__main__ import main
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    for path, words in ((fifo, "is a FIFO (named pipe), not a photo"), (loop, "is a symlink loop, not a photo"),
                        (Path("/dev/zero"), "is a character device, not a photo")):
        assert main(["identify", str(path), "--gallery", str(tmp_path / "g.db")]) == 2
        err = capsys.readouterr().err
        assert words in err and "not found" not in err and err.count("\n") == 1, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_folder_says_so_not_no_photos(tmp_path, capsys):
    from realtime.__main__ import main
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        assert main(["identify", str(locked), "--gallery", str(tmp_path / "g.db")]) == 2
        assert "permission denied" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


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


# -- configs ---------------------------------------------------------------------------------------
CONFIG_SCRIPT = r"""
import resource, sys
from realtime.config import load_config
from realtime.errors import UserError
try:
    load_config(sys.argv[1])
    print("loaded")
except UserError as err:
    print("refused:", err)
"""


def alias_bomb(levels: int = 8) -> str:
    """The issue's bomb: recognition.gallery a list of anchors, each nine aliases of the one before."""
    items = ['&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "recognition:\n  gallery: [" + ", ".join(items) + "]\n"


def test_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(8))  # 9**9 values once expanded
    assert path.stat().st_size < 500
    out, peak = run_bounded(CONFIG_SCRIPT, path)
    assert "refused:" in out, out
    message = out.split("refused:")[1].strip()
    assert "aliases" in message and len(message) < 400 and "\n" not in message
    assert peak < 500, peak


def test_a_bad_value_is_echoed_in_at_most_about_100_characters(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("recognition:\n  gallery: [" + ", ".join(["x" * 50] * 200) + "]\n")
    with pytest.raises(UserError) as info:
        load_config(path)
    assert "recognition.gallery" in str(info.value) and str(info.value).count("x" * 50) <= 2
    path.write_text("detection:\n  " + "k" * 1000 + ": 1\n")  # YAML plain keys stop at 1024
    with pytest.raises(UserError) as info:
        load_config(path)
    assert "unknown key" in str(info.value) and "k" * 101 not in str(info.value)


def test_a_5001_digit_number_in_a_config_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("detection:\n  min_size: " + "9" * 5001 + "\n")
    with pytest.raises(UserError) as info:
        load_config(path)
    assert len(str(info.value)) < 400


def test_config_from_a_fifo_dev_zero_or_a_huge_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a FIFO nobody writes to: a blocking read would hang until the timeout
    result = subprocess.run([sys.executable, "-m", "realtime", "list", "--config", str(fifo)], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 2 and "FIFO" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(UserError, match="character device"):
        load_config("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    with pytest.raises(UserError, match="over the limit"):
        load_config(big)


def test_camera_index_is_validated_before_opencv(tmp_path):
    for value in (-1, -5, 100, "99999999999999999999", "2147483648"):
        with pytest.raises(UserError, match="out of range"):
            camera_index(value, "--source")
    assert camera_index("3", "--source") == 3
    path = tmp_path / "c.yaml"
    path.write_text("capture:\n  source: -1\n")
    with pytest.raises(UserError, match="capture.source"):
        load_config(path)


@pytest.mark.parametrize("argv", [["--source", "99999999999999999999"], ["--source", "2147483648"],
                                  ["--source", "-1"], ["--config", "CONFIG"]])
def test_bad_camera_index_through_the_cli_is_one_line_not_a_crash(tmp_path, argv):
    config = tmp_path / "c.yaml"
    config.write_text("capture:\n  source: -2\n")
    argv = [str(config) if a == "CONFIG" else a for a in argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "realtime", *argv, "--headless", "--gallery",
                             str(tmp_path / "g.db")], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])  # not 139 (segfault)
    assert "Traceback" not in result.stderr and "out of range" in result.stderr or "at least 0" in result.stderr


def test_a_folder_as_source_says_folder(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "realtime", "--source", str(tmp_path), "--headless"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and "is a folder, not a video file" in result.stderr


# -- encoder.json and thresholds -------------------------------------------------------------------
GOOD_INFO = {"input_size": 60, "embedding_size": 128, "threshold": 0.7, "normalized": True}


def model_dir_with(tmp_path, text: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "encoder.json").write_text(text)
    return folder


@pytest.mark.parametrize("threshold", ["Infinity", "NaN", "1e308", "100", "2.5", "0", "-1", "1e999"])
def test_encoder_json_threshold_outside_0_2_is_refused(tmp_path, threshold):
    text = json.dumps({**GOOD_INFO, "threshold": 0.5}).replace("0.5", threshold)
    with pytest.raises(UserError) as info:
        read_model_info(model_dir_with(tmp_path, text))
    assert "threshold" in str(info.value) and "\n" not in str(info.value)


def test_encoder_json_threshold_inside_the_range_is_taken(tmp_path):
    assert read_model_info(model_dir_with(tmp_path, json.dumps({**GOOD_INFO, "threshold": 2})))["threshold"] == 2
    # seed-triplet encoders do not normalise: only finiteness bounds their threshold
    info = read_model_info(model_dir_with(tmp_path, json.dumps({**GOOD_INFO, "threshold": 3.5, "normalized": False})))
    assert info["threshold"] == 3.5


@pytest.mark.parametrize("text", ["[" * 200_000 + "]" * 200_000, '{"input_size": 6' + "0" * 5000 + "}",
                                  '{"input_size": 1' + "0" * 40 + ', "embedding_size": 128, "threshold": 0.7}'],
                         ids=["nested-200k", "5001-digits", "huge-input-size"])
def test_encoder_json_deep_or_huge_numbers_are_one_line(tmp_path, text):
    with pytest.raises(UserError) as info:
        read_model_info(model_dir_with(tmp_path, text))
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_threshold_policy_order_and_refusals():
    from realtime.config import RecognitionConfig
    info = {"threshold": 0.7}
    assert ThresholdPolicy(info, RecognitionConfig()).for_gallery() == 0.7
    assert ThresholdPolicy(info, RecognitionConfig(threshold=0.9)).for_gallery() == 0.9
    assert ThresholdPolicy(info, RecognitionConfig(threshold=0.9), 0.5).for_gallery() == 0.5
    for bad in (float("inf"), float("nan"), 2.01, 0.0, -0.1, 10**400):
        with pytest.raises(UserError, match="--threshold"):
            ThresholdPolicy(info, RecognitionConfig(), bad)
    with pytest.raises(UserError, match="recognition.threshold"):
        ThresholdPolicy(info, RecognitionConfig(threshold=3.0))
    with pytest.raises(UserError, match="threshold must be"):
        check_threshold("0.5", "x")


def test_plus_key_is_capped_below_accepting_everyone():
    cap = key_cap(0.726)
    assert cap == pytest.approx(KEY_CAP) and cap < 2.0
    t = 0.726
    for _ in range(1000):
        t = step_threshold(t, 0.02, cap)
    assert t == cap
    assert step_threshold(0.02, -0.5, cap) > 0
    assert key_cap(1.8) == 1.8  # a configured threshold above the cap is not lowered by +


@pytest.mark.parametrize("argv", [["--threshold", "inf"], ["--threshold", "nan"], ["--threshold", "100"]])
def test_threshold_flag_out_of_range_is_one_line(tmp_path, capsys, argv):
    from realtime.__main__ import main
    photo = tmp_path / "p.png"
    photo.write_bytes(png(64, 64))
    assert main(["identify", str(photo), "--gallery", str(tmp_path / "g.db"), *argv]) == 2
    err = capsys.readouterr().err
    assert "--threshold" in err and err.count("\n") == 1


def test_config_threshold_above_2_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("recognition:\n  threshold: 3\n")
    with pytest.raises(UserError, match="recognition.threshold"):
        load_config(path)


# -- names -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a\u009bb", "a\u0085b", "ann\u2028", "ann\u2029lee", "\u202eevil",
                                  "a\u2066b\u2069", "x\u200fy", "tab\there", "bell\x07", "del\x7f"])
def test_control_separator_and_bidi_characters_are_refused(name):
    with pytest.raises(UserError, match="control characters \\(U\\+"):
        check_name(name)


def test_names_are_nfc_and_stripped_the_same_everywhere():
    nfd = unicodedata.normalize("NFD", "José")
    assert nfd != "José" and check_name(nfd) == "José" == check_name("  José ")
    assert check_name("Zoë 👩‍💻") == "Zoë 👩‍💻"  # joiners in emoji are not controls


def test_long_names_are_echoed_truncated():
    with pytest.raises(UserError) as info:
        check_name("n" * 100_000)
    assert len(str(info.value)) < 200 and str(MAX_NAME_LENGTH) in str(info.value)
    with pytest.raises(UserError) as info:
        check_name("x" * 100_000 + "\x1b")
    assert len(str(info.value)) < 200


def test_shorten_never_builds_a_huge_repr():
    nested = ["lol"]
    for _ in range(30):
        nested = [nested] * 9  # 9**30 leaves if expanded
    assert len(shorten(nested)) < 200
    assert len(shorten("x" * 10**6)) < 200
    assert "too long" in shorten(10**5000)


def test_remove_strips_and_normalises_like_enroll_and_truncates_long_names(tmp_path, capsys):
    from realtime.__main__ import main
    from realtime.gallery import SQLiteStore
    with SQLiteStore(tmp_path / "g.db", "m" * 64) as gallery:
        gallery.add_samples("José", np.eye(1, 128, dtype=np.float32))
    nfd = " " + unicodedata.normalize("NFD", "José") + " "
    assert main(["remove", nfd, "--gallery", str(tmp_path / "g.db")]) == 0
    assert "removed José (1 sample)" in capsys.readouterr().out
    assert main(["remove", "n" * 100_000, "--gallery", str(tmp_path / "g.db")]) == 2
    err = capsys.readouterr().err
    assert len(err) < 300 and err.count("\n") == 1


def test_keys_prompt_stops_at_the_one_name_limit():
    from realtime.keys import KeyState, handle_key
    state = KeyState(naming=True)
    for _ in range(MAX_NAME_LENGTH + 10):
        state, _ = handle_key(state, ord("a"))
    assert len(state.text) == MAX_NAME_LENGTH


# -- Ctrl-C ----------------------------------------------------------------------------------------
def test_run_command_turns_ctrl_c_into_one_line(capsys):
    def main(argv):
        raise KeyboardInterrupt
    assert run_command(main, []) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted") and err.count("\n") == 1


@needs_data
def test_ctrl_c_during_enroll_is_one_line_and_the_gallery_untouched(tmp_path):
    import signal
    photo = sorted((Path(DATA) / "celebrity5/train/madonna").glob("*.jpg"))[0]
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "000_text.jpg").write_text("not a photo")  # its warning says processing has started
    for i in range(1, 600):
        os.link(photo, folder / f"{i:03d}.jpg") if os.stat(photo).st_dev == os.stat(folder).st_dev else \
            (folder / f"{i:03d}.jpg").write_bytes(photo.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    gallery = tmp_path / "g.db"
    # Ctrl-C's default action even when this test runs in a background job (which starts with SIGINT ignored)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "enroll", "ann", str(folder), "--gallery",
                             str(gallery)], stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))
    first = proc.stderr.readline()
    assert "000_text.jpg" in first, first
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest
    assert rest.strip().splitlines()[-1].startswith("interrupted")
    assert not gallery.exists() or gallery.stat().st_size == 0 or "ann" not in _people(gallery)


def _people(path: Path) -> str:
    import sqlite3
    with sqlite3.connect(path) as db:
        try:
            return " ".join(n for (n,) in db.execute("SELECT name FROM people"))
        except sqlite3.Error:
            return ""
