"""realtime.text: names drawn as written (FreeType through matplotlib), the fallback fonts, and each
label rendered once."""
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from realtime import text
from realtime.overlay import FaceLabel, draw_faces, draw_hud

CM = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "cmr10.ttf")   # a font without ë or ř


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
    assert inside.any() and not inside.all()                     # with a mark inside it ...
    question = ink(text.render("?", 18, fallbacks=())[0] > 128)
    assert np.array_equal(ink(inside), question)                 # ... and the mark is a question mark
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
