"""realtime.overlay: what is drawn on a frame."""
import numpy as np

from realtime import text
from realtime.overlay import AMBER, GREEN, RED, FaceLabel, draw, draw_faces, draw_hud


def label_strip(faces) -> np.ndarray:
    """The 24 rows above the first box, where its label goes, after drawing ``faces`` on black."""
    frame = np.zeros((240, 320, 3), np.uint8)
    draw_faces(frame, faces)
    x, y, w, _ = faces[0].box
    return frame[y - 24:y, x:x + 140]


def ink(mask: np.ndarray) -> np.ndarray:
    """The mask cropped to its drawn pixels."""
    rows, cols = np.nonzero(mask)
    return mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def bright(strip: np.ndarray) -> np.ndarray:
    """Pixels of the (antialiased) white text: every channel high, unlike any box colour."""
    return strip.min(axis=2) > 160


def test_boxes_are_green_when_named_amber_when_deciding_red_when_unknown():
    frame = np.zeros((240, 320, 3), np.uint8)
    draw(frame, [FaceLabel((20, 40, 60, 60), "Zo\u00eb", 0.3), FaceLabel((150, 40, 60, 60), None, 1.2),
                 FaceLabel((240, 140, 60, 60), None, 0.5, deciding="Ann")], fps=30.0, threshold=0.8, prompt="Name: a_")
    assert tuple(frame[70, 20]) == GREEN        # left edge of the named box
    assert tuple(frame[70, 150]) == RED         # left edge of the unknown box
    assert tuple(frame[170, 240]) == AMBER      # left edge of the box still deciding


def test_the_label_is_the_name_as_written_with_its_distance():
    zoe = label_strip([FaceLabel((20, 60, 60, 60), "Zo\u00eb", 0.3)])
    # white text on the box's colour, and really the name: Zoe without the diaeresis draws differently,
    # another distance draws differently, the same label draws the same.
    assert bright(zoe).sum() > 30 and (zoe == GREEN).all(axis=2).sum() > 100
    assert not np.array_equal(zoe, label_strip([FaceLabel((20, 60, 60, 60), "Zoe", 0.3)]))
    assert not np.array_equal(zoe, label_strip([FaceLabel((20, 60, 60, 60), "Zo\u00eb", 0.4)]))
    assert np.array_equal(zoe, label_strip([FaceLabel((20, 60, 60, 60), "Zo\u00eb", 0.3)]))


def test_a_deciding_face_shows_the_name_it_is_deciding_on_with_a_question_mark():
    deciding = label_strip([FaceLabel((20, 60, 60, 60), None, 0.5, deciding="Ann")])
    assert (deciding == AMBER).all(axis=2).sum() > 100
    assert not np.array_equal(deciding, label_strip([FaceLabel((20, 60, 60, 60), None, 0.5)]))   # not "Unknown"
    named = label_strip([FaceLabel((20, 60, 60, 60), "Ann", 0.5)])
    assert bright(deciding).sum() > bright(named).sum()          # "Ann?" has one glyph more than "Ann"


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



def test_the_key_help_names_the_n_key_only_when_unknown_faces_are_collected():
    from realtime.overlay import HELP, HELP_NAMING
    plain, naming = np.zeros((480, 640, 3), np.uint8), np.zeros((480, 640, 3), np.uint8)
    draw_hud(plain, fps=None, threshold=None)
    draw_hud(naming, fps=None, threshold=None, naming=True)
    assert "n: name unknown" in HELP_NAMING and "n:" not in HELP
    lit = [np.nonzero(f[240:].max(axis=(0, 2)) > 200)[0] for f in (plain, naming)]
    assert lit[1].max() > lit[0].max() + 50        # the longer line: the n key drawn too

def test_paused_is_drawn():
    plain, paused = np.zeros((480, 640, 3), np.uint8), np.zeros((480, 640, 3), np.uint8)
    draw_hud(plain, fps=None, threshold=0.7, paused=False)
    draw_hud(paused, fps=None, threshold=0.7, paused=True)
    yellow = np.all(np.abs(paused.astype(int) - (0, 220, 255)) < 40, axis=2)
    assert yellow[240:].sum() > 200 and not np.array_equal(plain, paused)     # above the key help, clear of faces
    # ... and it is the word PAUSED: a glyph is blended into the banner colour, so a pixel within 40 of
    # yellow is one the glyph covers above 215/255, at the size the banner is drawn
    word = ink(yellow)
    assert any(np.array_equal(ink(text.render("PAUSED", px)[0] > 215), word) for px in range(8, 80))
    assert not any(np.array_equal(ink(text.render("PAUSE", px)[0] > 215), word) for px in range(8, 80))


def yellow(frame):
    from realtime.overlay import YELLOW
    return np.all(frame == YELLOW, axis=2)


def test_a_long_name_being_typed_wraps_inside_a_512_frame_below_the_face():
    from realtime import text
    from realtime.overlay import draw_hud, wrap
    frame = np.zeros((512, 512, 3), np.uint8)
    prompt = "Name: " + "W" * 64 + "_  (Enter saves, Esc cancels)"        # the longest name the window takes
    draw_hud(frame, fps=30.0, threshold=0.66, prompt=prompt)
    rows, cols = np.nonzero(yellow(frame))
    assert len(rows) > 500                                                 # it is drawn ...
    assert cols.max() < 512 - 4 and cols.min() >= 4                      # ... inside the frame, not off its edge
    assert rows.min() > 512 * 0.6                                          # ... and below the middle, not across a face
    pieces = wrap(prompt, 20, 512 - 2 * 9)
    assert len(pieces) >= 2 and "".join(pieces).replace(" ", "") == prompt.replace(" ", "")   # nothing lost
    assert all(text.size(piece, 20)[0] <= 512 - 18 for piece in pieces)
    assert wrap("Name: Ann_", 20, 494) == ("Name: Ann_",)
    assert wrap("Enrolling Ann: look at the camera", 20, 200)[0] in ("Enrolling Ann:", "Enrolling Ann: look")  # at spaces


def test_the_prompt_and_message_stay_above_the_help_and_clear_of_each_other():
    from realtime.overlay import draw_hud
    plain = draw_hud(np.zeros((480, 640, 3), np.uint8), fps=None, threshold=None)
    both = draw_hud(np.zeros((480, 640, 3), np.uint8), fps=None, threshold=None, prompt="Name: Zoë_",
                    message="Enrollment cancelled", paused=True)
    help_top = np.nonzero(plain.any(axis=2))[0].min()                     # where the key help starts
    rows = np.nonzero(yellow(both))[0]
    assert rows.max() < help_top and rows.min() > 480 * 0.6                # PAUSED, prompt and message: between


def test_a_kept_unknown_face_shows_its_group():
    kept = label_strip([FaceLabel((20, 60, 60, 60), None, 1.2, unknown=3)])
    plain = label_strip([FaceLabel((20, 60, 60, 60), None, 1.2)])
    assert (kept == RED).all(axis=2).sum() > 100
    assert bright(kept).sum() > bright(plain).sum()                      # "Unknown #3" is longer than "Unknown"
    assert np.array_equal(kept, label_strip([FaceLabel((20, 60, 60, 60), None, 1.2, unknown=3)]))
    assert not np.array_equal(kept, label_strip([FaceLabel((20, 60, 60, 60), None, 1.2, unknown=4)]))
