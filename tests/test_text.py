"""Names drawn as written (FreeType through matplotlib), the overlay's layout and size, the key
codes a window backend delivers, and the recording (codec, no HUD unless --record-hud).

No window here: the real-window tests are in test_window_live.py.
"""
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

from realtime import text
from realtime.keys import BACKSPACE, ENTER, ESC, KeyState, from_keysym, from_waitkey, handle_key
from realtime.overlay import FaceLabel, draw_faces, draw_hud

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ["FACES_DATA"]) if os.environ.get("FACES_DATA") else None
MODEL = Path(os.environ.get("REALTIME_TEST_MODEL", ROOT / "models"))
CLIP = "sadtalker_WDA_KatieHill_000.mp4"
CM = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "cmr10.ttf")   # a font without ë or ř

needs_data = pytest.mark.skipif(DATA is None, reason="FACES_DATA is not set (point it at the shared data folder)")
needs_model = pytest.mark.skipif(not (MODEL / "encoder.tflite").is_file(), reason=f"no trained encoder in {MODEL}")


def ink(mask):
    """The mask cropped to its drawn pixels."""
    rows, cols = np.nonzero(mask)
    return mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


# -- text ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, ascii_form", [("Zoë", "Zoe"), ("José", "Jose"), ("Dvořák", "Dvorak")])
def test_accented_names_are_drawn_with_their_accents(name, ascii_form):
    mask, _ = text.render(name, 32)
    plain, _ = text.render(ascii_form, 32)
    assert mask.shape[0] == plain.shape[0]                       # one line height for a size
    assert (mask > 128).sum() > (plain > 128).sum()              # the accents are ink, not dropped
    assert not np.array_equal(mask, plain)


def test_nfd_input_is_drawn_like_nfc():
    assert np.array_equal(text.render("Jose\u0301", 30)[0], text.render("Jos\u00e9", 30)[0])


def test_a_character_the_primary_font_lacks_comes_from_the_fallback():
    """cmr10 has no ř; with DejaVu Sans as its fallback the ř is DejaVu's own glyph, exactly."""
    fallen_back, _ = text.render("ř", 30, primary=CM, fallbacks=(str(text.PRIMARY),))
    dejavu, _ = text.render("ř", 30, primary=str(text.PRIMARY), fallbacks=())
    assert np.array_equal(ink(fallen_back), ink(dejavu))


def test_a_character_no_font_has_is_a_boxed_question_mark():
    boxed, _ = text.render("李", 30, fallbacks=())
    assert np.array_equal(boxed, text.render("龍", 30, fallbacks=())[0])   # every missing glyph: the same box
    drawn = ink(boxed) > 128
    assert drawn[0].all() and drawn[-1].all() and drawn[:, 0].all() and drawn[:, -1].all()   # a closed frame
    inside = drawn[2:-2, 2:-2]
    assert inside.any() and not inside.all()                     # with a mark inside it
    question = ink(text.render("?", 18, fallbacks=())[0]) > 128
    assert question.sum() > 0 and drawn.sum() > question.sum()
    three, _ = text.render("李小龍", 30, fallbacks=())
    assert three.shape[1] == 3 * boxed.shape[1]                  # one box per character: nothing silently dropped


def test_cjk_names_use_an_installed_cjk_font():
    path = text.fallback_font()
    if path is None:
        pytest.skip("no CJK font installed here (fonts-noto-cjk, fonts-wqy-zenhei): 李小龍 is drawn as boxes")
    drawn, _ = text.render("李小龍", 30)
    boxes, _ = text.render("李小龍", 30, fallbacks=())
    assert not np.array_equal(drawn, boxes)


def test_each_distinct_label_is_rendered_once():
    frame = np.zeros((480, 640, 3), np.uint8)
    faces = [FaceLabel((100, 100, 120, 120), "Zoë", 0.41), FaceLabel((300, 100, 120, 120), None, 1.2)]
    draw_faces(frame.copy(), faces)
    misses = text.render.cache_info().misses
    for _ in range(50):
        draw_faces(frame.copy(), faces)
        draw_hud(frame.copy(), fps=30.2, threshold=0.73)
    draw_hud(frame.copy(), fps=30.2, threshold=0.73)
    after_one_hud = text.render.cache_info().misses
    for _ in range(50):
        draw_hud(frame.copy(), fps=30.2, threshold=0.73)
    assert text.render.cache_info().misses == after_one_hud     # no font work per frame once a label is known
    assert after_one_hud - misses <= 6                           # fps, threshold, help: once each


def test_faces_are_drawn_green_known_red_unknown_with_the_label_above():
    frame = np.zeros((240, 320, 3), np.uint8)
    draw_faces(frame, [FaceLabel((20, 80, 60, 60), "Zoë", 0.3), FaceLabel((170, 80, 60, 60), None, 1.2)])
    assert tuple(frame[110, 20]) == (0, 200, 0) and tuple(frame[110, 170]) == (0, 0, 230)
    assert (frame[60:80, 20:80] == (0, 200, 0)).all(axis=2).sum() > 50       # the label's green band above


def help_height(width, height):
    frame = np.zeros((height, width, 3), np.uint8)
    draw_hud(frame, fps=None, threshold=None)
    rows = np.nonzero(frame[height // 2:].max(axis=(1, 2)) > 200)[0]
    return rows.max() - rows.min() + 1


def test_overlay_text_scales_with_the_frame():
    small, large = help_height(640, 480), help_height(1920, 1080)
    assert small >= 10                      # readable at 480p (the old help line was about 7 px)
    assert large >= 2 * small               # and grows with the frame
    assert help_height(320, 240) >= 7       # a small frame shrinks it to fit, not off the edge


def test_paused_is_drawn():
    plain, paused = np.zeros((480, 640, 3), np.uint8), np.zeros((480, 640, 3), np.uint8)
    draw_hud(plain, fps=None, threshold=0.7, paused=False)
    draw_hud(paused, fps=None, threshold=0.7, paused=True)
    yellow = np.all(np.abs(paused.astype(int) - (0, 220, 255)) < 40, axis=2)
    assert yellow[240:].sum() > 200 and not np.array_equal(plain, paused)     # above the key help, clear of faces


# -- keys ---------------------------------------------------------------------------------------
def test_waitkeyex_codes_become_keys_and_modifiers_are_ignored():
    assert [from_waitkey(c) for c in (107, 39, 34, 13, 10, 27, 8)] == [107, 39, 34, ENTER[1], 13, ESC, 8]
    assert from_waitkey(-53) == ord("ë") and from_waitkey(-55) == ord("é")          # Qt's signed Latin-1
    assert from_waitkey(0x1000159) == ord("ř") and from_waitkey(0x100674E) == ord("李")  # Unicode keysyms
    for modifier in (0xFFE1, 0xFFE2, 0xFFE3, 0xFFE5, 0xFFE9, 0xFF51, 0xFFBE, -1):     # Shift, Ctrl, Caps, Alt...
        assert from_waitkey(modifier) is None
    assert from_keysym(0x4B) == ord("K") and from_keysym(0xEB) == ord("ë") and from_keysym(0xFF0D) == 13
    assert from_keysym(0xFF08) in BACKSPACE and from_keysym(0xFFE1) is None


def test_shift_alone_no_longer_types_a_letter():
    """Shift (0xFFE1 from waitKeyEx; 225 once masked by waitKey) then a, n, n is ``ann``, not ``áann``."""
    state, _ = handle_key(KeyState(), ord("e"))
    for code in (0xFFE1, ord("a"), ord("n"), ord("n")):
        key = from_waitkey(code)
        if key is not None:
            state, _ = handle_key(state, key)
    assert state.text == "ann"


# -- recording ----------------------------------------------------------------------------------
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
