"""The live program's pure parts, without a camera, a window or a model."""
import os
import stat

import numpy as np
import pytest

from realtime.errors import UserError
from realtime.gallery import Gallery
from realtime.keys import KeyState, handle_key, parse_key_script
from realtime.int8_scores import Int8Scorer
from realtime.matching import Index, int8_candidates, match, nearest_rows
from realtime.overlay import FaceLabel, draw, drawable
from realtime.tracking import Tracker, iou, vote


def unit(*v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


# -- matching ----------------------------------------------------------------------------------
def test_empty_gallery_gives_unknown_for_every_face():
    out = match(Index.empty(3), np.eye(3, dtype=np.float32)[:2], threshold=1.0)
    assert [(m.nearest, m.name) for m in out] == [(None, None), (None, None)]
    assert all(np.isinf(m.distance) for m in out)
    assert match(Index.empty(3), np.zeros((0, 3), np.float32), 1.0) == []


def test_nearest_sample_threshold_and_every_face_matched():
    emb = np.stack([unit(1, 0, 0), unit(1, 0.1, 0), unit(0, 1, 0)])
    index = Index.build(emb, [0, 0, 1], ["ann", "bob"])
    queries = np.stack([unit(1, 0.05, 0), unit(0, 1, 0.01), unit(0, 0, 1)])
    out = match(index, queries, threshold=0.5)
    assert [m.nearest for m in out] == ["ann", "bob", "ann"]  # a tie goes to the first sample
    assert out[0].name == "ann" and out[1].name == "bob"
    assert out[2].name is None and out[2].distance == pytest.approx(np.sqrt(2), abs=1e-4)
    expected = np.linalg.norm(emb - queries[0], axis=1).min()
    assert out[0].distance == pytest.approx(expected, abs=1e-5)


def test_threshold_is_inclusive_and_ties_are_deterministic():
    emb = np.stack([unit(1, 0), unit(-1, 0)])
    index = Index.build(emb, [0, 1], ["left", "right"])
    q = unit(0, 1)[None]  # equidistant from both
    first = match(index, q, threshold=float(np.sqrt(2)) + 1e-6)[0]
    assert first.nearest == "left" and first.name == "left"
    assert match(index, q, threshold=1.0)[0].name is None


def test_mean_mode_uses_each_persons_mean():
    emb = np.array([[0, 0], [4, 0], [2.5, 0]], np.float32)
    index = Index.build(emb, [0, 0, 1], ["a", "b"])  # a's mean is (2, 0)
    q = np.array([[1.9, 0]], np.float32)
    assert match(index, q, 10, "mean")[0].nearest == "a"
    assert match(index, q, 10, "nearest")[0].nearest == "b"


def test_matching_100k_samples_is_vectorised():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(100_000, 128)).astype(np.float32)
    index = Index.build(emb, rng.integers(0, 100, 100_000), [f"p{i}" for i in range(100)])
    out = match(index, emb[[5, 77]], threshold=0.1)
    assert [m.distance for m in out] == pytest.approx([0, 0], abs=1e-2)


def _faces_like(rng, people: int, per_person: int, dim: int = 128, spread: float = 0.35) -> np.ndarray:
    """Unit vectors in tight clusters, one per person, as an encoder's embeddings are."""
    centres = rng.normal(size=(people, dim))
    rows = np.repeat(centres, per_person, axis=0) + spread * rng.normal(size=(people * per_person, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_int8_search_answers_exactly_as_the_float32_search(kind):
    rng = np.random.default_rng(1)
    if kind == "random":
        refs = rng.normal(size=(6000, 128)).astype(np.float32)
        refs /= np.linalg.norm(refs, axis=1, keepdims=True)
    else:
        refs = _faces_like(rng, 600, 10)
    sq = np.einsum("ij,ij->i", refs, refs)
    scorer = Int8Scorer(refs, sq)
    near = refs[rng.integers(0, len(refs), 40)] + 0.2 * rng.normal(size=(40, 128)).astype(np.float32)
    strangers = rng.normal(size=(20, 128)).astype(np.float32)
    queries = np.vstack([near, strangers])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for batch in (queries[:1], queries[:3], queries):
        fast_rows, fast_dist = nearest_rows(batch, refs, sq, scorer)
        exact_rows, exact_dist = nearest_rows(batch, refs, sq)
        assert fast_rows.tolist() == exact_rows.tolist()
        assert fast_dist.tolist() == exact_dist.tolist()


def test_int8_scores_stay_within_their_proven_bound():
    rng = np.random.default_rng(2)
    refs = _faces_like(rng, 300, 10)
    sq = np.einsum("ij,ij->i", refs, refs)
    scorer = Int8Scorer(refs, sq)
    queries = _faces_like(rng, 5, 1)
    exact = sq[None, :] - 2.0 * queries @ refs.T
    approx = scorer.scores(queries)
    slack = np.abs(approx - exact).max(axis=1)
    assert (slack <= scorer.bound(queries)).all()
    assert (slack > 0).any()                       # int8 really is approximate: the bound matters
    assert np.abs(approx - scorer.reference_scores(queries)).max() <= scorer.bound(queries).max()


def test_int8_candidates_keep_every_possible_winner():
    approx = np.array([0.50, 0.30, 0.32, 0.41, 0.30], np.float32)
    assert int8_candidates(approx, 0.01).tolist() == [1, 2, 4]   # 0.30 + 2 x 0.01 = 0.32 kept
    assert int8_candidates(approx, 0.0).tolist() == [1, 4]


def test_int8_index_for_large_galleries_keeps_ties_and_near_copies_exact():
    rng = np.random.default_rng(3)
    base = unit(*rng.normal(size=16))
    # rows so close that int8 rounding cannot tell them apart: the bound rules out too few
    refs = (base + 0.01 * rng.normal(size=(2000, 16))).astype(np.float32)
    refs[1500] = refs[700]                              # an exact tie: the first row wins
    index = Index.build(refs, np.arange(2000) % 7, [f"p{i}" for i in range(7)], int8_min_rows=1000)
    assert index.int8 is not None and Index.build(refs[:10], [0] * 10, ["a"]).int8 is None
    queries = np.vstack([refs[700], refs[3] + 1e-3])
    in_play = int8_candidates(index.int8.scores(queries[:1])[0], float(index.int8.bound(queries[:1])[0]))
    assert len(in_play) > 0.25 * len(refs)              # so the one-pass float32 fallback runs
    got = match(index, queries, 1.0)
    exact = match(Index.build(refs, np.arange(2000) % 7, [f"p{i}" for i in range(7)], int8_min_rows=10**9),
                  queries, 1.0)
    assert got == exact and got[0].nearest == "p0"     # row 700, not its copy at 1500 (p2)


# -- tracking ----------------------------------------------------------------------------------
def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_tracker_keeps_ids_across_moves_and_drops_lost_tracks():
    t = Tracker(min_iou=0.3, max_missed=1, vote_frames=3)
    a, b = t.update([(0, 0, 50, 50), (200, 0, 50, 50)])
    assert a != b
    assert t.update([(205, 2, 50, 50), (3, 1, 50, 50)]) == [b, a]
    assert t.update([]) == []
    assert t.update([]) == []          # missed twice > max_missed: gone
    (c,) = t.update([(0, 0, 50, 50)])
    assert c not in (a, b)


def test_vote_steadies_the_label():
    t = Tracker(vote_frames=5)
    (tid,) = t.update([(0, 0, 10, 10)])
    shown = [t.vote(tid, label) for label in ["ann", "ann", None, "ann", "bob", "ann"]]
    assert shown == ["ann", "ann", "ann", "ann", "ann", "ann"]
    assert vote(["a", "b"]) == "b" and vote([]) is None
    t.reset()
    assert t.vote(tid, "bob") == "bob"


# -- keys ----------------------------------------------------------------------------------------
def press(state, keys):
    actions = []
    for k in keys:
        state, a = handle_key(state, ord(k) if isinstance(k, str) else k)
        actions.append(a.kind if a else None)
    return state, actions


def test_typing_a_name_and_saving():
    state, actions = press(KeyState(), ["e", "Z", "o", "q", 8, "\u00eb", " ", "x", 8, 8, 13])
    assert actions[0] == "start_naming"
    _, a = handle_key(KeyState(naming=True, text="Zo\u00eb"), 13)
    assert a.kind == "enroll" and a.name == "Zo\u00eb"
    assert state == KeyState()


def test_escape_cancels_then_quits_and_other_keys():
    state, actions = press(KeyState(), ["e", "a", 27, 27])
    assert actions[-2:] == ["cancel", "quit"]
    assert press(KeyState(), ["q"])[1] == ["quit"]
    assert press(KeyState(), [" ", "+", "-", "z", -1])[1] == ["pause", "threshold_up", "threshold_down", None, None]
    _, a = handle_key(KeyState(naming=True, text="  "), 13)
    assert a.kind == "cancel"            # an empty name saves nothing


def test_key_script():
    assert parse_key_script("e@3,a,ENTER,q@10") == {3: [101], 4: [97], 5: [13], 10: [113]}
    assert parse_key_script("SPACE,COMMA") == {0: [32], 1: [44]}
    with pytest.raises(ValueError):
        parse_key_script("NOPE")


# -- gallery -----------------------------------------------------------------------------------
def test_gallery_round_trip_mode_and_unicode_names(tmp_path):
    path = tmp_path / "sub" / "g.db"
    rng = np.random.default_rng(1)
    with Gallery(path, "model-a") as g:
        assert len(g.index()) == 0
        assert g.add_samples("../etc/passwd", rng.normal(size=(2, 8))) == 2
        assert g.add_samples("Zo\u00eb \u674e", rng.normal(size=(3, 8))) == 3
        assert g.add_samples("Zo\u00eb \u674e", rng.normal(size=(1, 8))) == 4
        index = g.index()
        assert len(index) == 6 and set(index.names) == {"../etc/passwd", "Zo\u00eb \u674e"}
        assert g.index() is index            # cached until the gallery changes
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / "sub")) == ["g.db"]   # the name made no file
    with Gallery(path, "model-a") as g:
        assert g.people() == [("../etc/passwd", 2), ("Zo\u00eb \u674e", 4)]
        assert g.remove("../etc/passwd") == 2
        with pytest.raises(UserError):
            g.remove("nobody")
        assert g.people() == [("Zo\u00eb \u674e", 4)]


def test_gallery_of_another_encoder_is_refused(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path, "model-a") as g:
        g.add_samples("ann", np.ones((1, 4)))
    with pytest.raises(UserError, match="re-enroll"):
        Gallery(path, "model-b")
    with Gallery(path, None) as g:      # list/remove still work
        assert g.people() == [("ann", 1)]


def test_failed_enrollment_leaves_earlier_state(tmp_path):
    with Gallery(tmp_path / "g.db", "m") as g:
        g.add_samples("ann", np.ones((2, 4)))
        bad = np.ones((2, 4), np.float32)
        with pytest.raises(ValueError):
            g.add_samples("bob", bad[:0])
        with pytest.raises(UserError):
            g.add_samples("", bad)
        assert g.people() == [("ann", 2)]


def test_gallery_index_sees_other_connections(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path, "m") as a, Gallery(path, "m") as b:
        assert len(a.index()) == 0
        b.add_samples("bob", np.ones((1, 4)))
        assert a.index().names == ("bob",)


# -- overlay -----------------------------------------------------------------------------------
def test_overlay_draws_known_green_unknown_red_and_unicode():
    assert drawable("Zo\u00eb \u674e") == "Zoe ?"
    frame = np.zeros((240, 320, 3), np.uint8)
    draw(frame, [FaceLabel((20, 40, 60, 60), "Zo\u00eb", 0.3), FaceLabel((150, 40, 60, 60), None, 1.2)],
         fps=30.0, threshold=0.8, prompt="Name: a_")
    assert tuple(frame[70, 20]) == (0, 200, 0)     # left edge of the known box
    assert tuple(frame[70, 150]) == (0, 0, 230)    # left edge of the unknown box


# -- detection switches ------------------------------------------------------------------------
def test_full_detection_scale_is_capped_by_detect_max_width():
    from realtime.app import FaceFinder
    from realtime.config import apply_overrides, load_config
    config = apply_overrides(load_config(), {"recognition.detect_async": "never", "recognition.detect_scale": 0.5,
                                             "recognition.detect_max_width": 448})
    finder = FaceFinder(config)
    assert finder._scale(np.zeros((480, 640, 3), np.uint8)) == 0.5
    assert finder._scale(np.zeros((720, 1280, 3), np.uint8)) == pytest.approx(448 / 1280)
    uncapped = FaceFinder(apply_overrides(config, {"recognition.detect_max_width": 0}))
    assert uncapped._scale(np.zeros((720, 1280, 3), np.uint8)) == 0.5


def test_losing_every_followed_face_triggers_a_full_detection_at_once():
    from realtime.app import FaceFinder
    from realtime.config import apply_overrides, load_config
    finder = FaceFinder(apply_overrides(load_config(), {"recognition.detect_async": "never",
                                                        "recognition.detect_every": 10}))
    blank = np.zeros((240, 320, 3), np.uint8)
    assert finder.find(blank, []) == ([], True)                 # the first frame: a full detection
    assert finder.find(blank, []) == ([], False)                # nothing to follow, not due
    assert finder.find(blank, [(100, 100, 60, 60)]) == ([], True)  # the followed face is gone: look everywhere
