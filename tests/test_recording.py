"""realtime.recording (--record): the codec, the HUD left out unless --record-hud; on a disk that fills
up, under a file-size limit, and with frames no encoder takes: one error line, exit status 2, and the
previous good recording kept (issue 26 item 1)."""
import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.errors import UserError
from realtime.recording import open_recorder
from testdata import DATA, MODEL, ROOT, needs_data, needs_model

CLIP = "sadtalker_WDA_KatieHill_000.mp4"


def noise(n, size=(320, 240), seed=0):
    """Frames that compress badly: a small disk fills within a second of video."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(n)]


def frame_count(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def small_disk(mount_tmpfs):
    """A real 768 KiB file system (tmpfs; root only) that fills up."""
    return mount_tmpfs("768k")


def test_a_recording_holds_every_frame_and_is_renamed_into_place(tmp_path):
    out = tmp_path / "out.mp4"
    recording = open_recorder(out, 25.0, (320, 240))
    for frame in noise(30):
        recording.write(frame)
    recording.release()
    assert frame_count(out) == 30 and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_a_full_disk_stops_the_recording_with_one_error_and_keeps_the_previous_file(small_disk):
    """The disk fills mid-recording: before, OpenCV printed "Failed to write frame" for every frame and
    the good out.mp4 was replaced by an unplayable file ("moov atom not found")."""
    out = small_disk / "out.mp4"
    recording = open_recorder(out, 25.0, (160, 120))
    for frame in noise(10, (160, 120)):
        recording.write(frame)
    recording.release()                                    # the previous good recording: 10 frames
    before = digest(out)
    recording = open_recorder(out, 25.0, (320, 240))
    with pytest.raises(UserError) as caught:
        for frame in noise(400, seed=1):
            recording.write(frame)
        recording.release()
    message = str(caught.value)
    assert "no space left on device" in message and "the previous out.mp4 is kept" in message, message
    recording.release()                                    # the loop's finally: nothing more happens
    assert digest(out) == before and frame_count(out) == 10
    assert sorted(p.name for p in small_disk.iterdir()) == ["out.mp4"]        # no temp file left


def test_a_recording_that_fills_the_disk_at_release_is_not_kept(small_disk, fill_disk):
    """Room for the frames but not for the file's index written at release: found by reading it back."""
    out = small_disk / "out.mp4"
    recording = open_recorder(out, 25.0, (320, 240))
    for frame in noise(8, seed=2):
        recording.write(frame)
    fill_disk(small_disk)                                  # the disk fills before the writer is released
    with pytest.raises(UserError, match="cannot be written .*nothing was recorded"):
        recording.release()
    assert not out.exists() and sorted(p.name for p in small_disk.iterdir()) == ["filler"]


FSIZE_CHILD = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))   # ulimit -f
from realtime.__main__ import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(DATA is None or not (MODEL / "encoder.tflite").is_file(), reason="needs FACES_DATA and the model")
def test_a_file_size_limit_ends_a_live_run_with_exit_2_and_keeps_the_previous_recording(tmp_path):
    out = tmp_path / "out.mp4"
    shutil.copy(DATA / "videos" / CLIP, out)                # the previous good recording
    before = digest(out)
    proc = subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(150_000), "--source", str(DATA / "videos" / CLIP),
                           "--headless", "--record", str(out), "--model", str(MODEL), "--gallery",
                           str(tmp_path / "g.db")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1"))
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr and "Failed to write frame" not in proc.stderr
    assert "file size limit of 150,000 bytes" in errors[0] and "previous out.mp4 is kept" in errors[0], errors
    assert digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]        # no temp file, no gallery


@pytest.mark.parametrize("name, size, words", [
    ("big.mp4", (10000, 10000), "10000x10000 frames cannot be encoded (MPEG-4 takes 2 to 8191 pixels a side)"),
    ("tiny.mp4", (1, 1), "1x1 frames cannot be encoded"),
    ("clip.txt", (320, 240), "use a .mp4 or .avi name"),
])
def test_a_recording_no_encoder_takes_says_why(tmp_path, name, size, words):
    with pytest.raises(UserError) as caught:
        open_recorder(tmp_path / name, 25.0, size)
    assert words in str(caught.value), caught.value
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".avi"])
def test_a_recording_read_back_must_be_whole_and_hold_every_frame(tmp_path, suffix):
    """The check after release reads the container's own structure (OpenCV's FFmpeg opens one file
    at a time, so a stream reconnecting on another thread would hold it up): a file cut short, or
    one whose index counts fewer frames than were written, is not kept."""
    from realtime.recording import missing_frames
    out = tmp_path / f"out{suffix}"
    recording = open_recorder(out, 25.0, (64, 48))
    for frame in noise(7, (64, 48)):
        recording.write(frame)
    recording.release()
    assert missing_frames(out, 7) is None and frame_count(out) == 7
    assert missing_frames(out, 8) == "the file holds 7 of the 8 frames written"
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(out.read_bytes()[:len(out.read_bytes()) * 2 // 3])
    assert missing_frames(cut, 7) == "the file was left incomplete and cannot be played"


def mp4_boxes(path):
    """The top-level boxes of an MP4 in file order, and the video sample entry's codec (``avc1``: H.264)."""
    data = Path(path).read_bytes()
    order, at = [], 0
    while at + 8 <= len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        order.append(data[at + 4:at + 8].decode("latin-1"))
        if length < 8:
            break
        at += length
    stsd = data.find(b"stsd")
    return order, data[stsd + 16:stsd + 20].decode("latin-1")


def test_an_mp4_recording_is_h264_that_a_browser_plays(tmp_path, caplog):
    """Through PyAV's libx264 (OpenCV's wheels write only MPEG-4 Part 2, which browsers do not play), the
    index in front of the data (a browser starts at once), every frame kept, odd sides padded to even."""
    pytest.importorskip("av")
    out = tmp_path / "out.mp4"
    recording = open_recorder(out, 25.0, (321, 241))
    for frame in noise(30, (321, 241)):
        recording.write(frame)
    recording.release()
    assert recording.codec == "h264"
    order, codec = mp4_boxes(out)
    assert codec == "avc1" and order.index("moov") < order.index("mdat"), (order, codec)
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (322, 242)
    assert frame_count(out) == 30 and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert "mp4v" not in caplog.text


def test_without_pyav_the_log_says_the_recording_needs_a_player_such_as_vlc(tmp_path, caplog, monkeypatch):
    import logging
    monkeypatch.setitem(sys.modules, "av", None)          # PyAV not installed
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO):
        recording = open_recorder(out, 25.0, (320, 240))
        for frame in noise(5):
            recording.write(frame)
        recording.release()
    assert frame_count(out) == 5 and recording.codec in ("mp4v", "avc1")      # OpenCV's writer, not PyAV's
    if recording.codec == "mp4v":                          # (an OpenCV built with an H.264 encoder: avc1)
        assert "browsers do not play (VLC and most players do): `pip install av` records H.264" in caplog.text
        assert mp4_boxes(out)[1] == "mp4v"


def recorded_frames(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames, cap
        frames.append(frame)


def test_recording_codec_is_h264_where_possible_else_mp4v_said_in_the_log(tmp_path, caplog):
    from realtime.recording import open_recorder
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO, logger="realtime.recording"):
        recording = open_recorder(out, 25.0, (160, 120))
        for i in range(10):
            recording.write(np.full((120, 160, 3), 20 * i, np.uint8))
        assert not out.exists()                  # written under a temporary name until complete
        recording.release()
    frames, cap = recorded_frames(out)
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace")
    expected = {"h264": ("avc1", "h264"), "avc1": ("avc1", "h264"), "mp4v": ("mp4v", "fmp4")}[recording.codec]
    assert len(frames) == 10 and fourcc.lower() in expected
    if recording.codec == "mp4v":
        assert "recording as MPEG-4 Part 2 (mp4v), which browsers do not play" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]      # no temp file left


@needs_data
@needs_model
def test_recording_leaves_out_the_hud_unless_record_hud(tmp_path):
    """The same 12 frames recorded twice: without --record-hud the help line's corner is the video's
    own pixels (up to compression), with it the help line is there."""
    source = DATA / "videos" / CLIP
    outs = {}
    for flag in ([], ["--record-hud"]):
        out = tmp_path / f"out{len(outs)}.mp4"
        proc = subprocess.run([sys.executable, "-m", "realtime", "--source", source, "--headless", "--max-frames",
                               "12", "--record", out, "--model", MODEL, "--gallery", tmp_path / "g.db", *flag],
                              cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs[bool(flag)] = recorded_frames(out)[0]
    original = recorded_frames(source)[0][:12]
    assert len(outs[False]) == len(outs[True]) == 12
    corner = (slice(480, 512), slice(0, 300))                    # where the key help is drawn
    plain = np.abs(outs[False][6][corner].astype(int) - original[6][corner]).mean()
    hud = np.abs(outs[True][6][corner].astype(int) - original[6][corner]).mean()
    assert plain < 8 and hud > 4 * plain + 10, (plain, hud)
