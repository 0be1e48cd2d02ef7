"""realtime.tracking: box overlap, tracks across frames, and the name vote."""
import pytest

from realtime.tracking import Tracker, iou, vote


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


def test_a_name_needs_agreeing_frames_before_it_shows():
    t = Tracker(vote_frames=5, vote_agree=3)
    (tid,) = t.update([(0, 0, 10, 10)])
    # One frame that names someone (a stranger's bad frame) never shows that name ...
    shown = [t.vote(tid, label) for label in [None, "bob", None, None, "ann", "ann", "ann", None, "bob"]]
    assert shown == [None, None, None, None, None, None, "ann", "ann", "ann"]
    # ... and unknown frames count against a name: 2 of 5 is not enough.
    assert vote(["ann", None, None, "ann", None], agree=3) is None
    assert vote(["ann", "bob", "ann", "bob", "ann"], agree=3) == "ann"
    assert vote(["ann", "bob", "bob", "ann"], agree=2) == "ann"   # a tie: the most recent


def test_a_face_that_replaces_another_in_the_same_place_never_shows_its_name():
    t = Tracker(vote_frames=5, vote_agree=3)
    box = (0, 0, 10, 10)
    (tid,) = t.update([box])
    # ann sits there for five frames ...
    assert [t.vote(tid, "ann", "ann") for _ in range(5)][-1] == "ann"
    # ... then a stranger takes her place at once: the box overlaps, the track goes on, and ann's
    # four remaining votes would outnumber the stranger's Unknown frames for two frames.
    (same,) = t.update([box])
    assert same == tid
    assert vote(["ann", "ann", "ann", "ann", None], agree=3) == "ann"
    stranger = [t.vote(tid, None, "bob") for _ in range(5)]      # bob: the nearest, too far to name
    assert stranger == [None] * 5
    # ann's own frame too far to name (a blink) keeps her name: she is still the nearest.
    (tid2,) = t.update([(50, 50, 10, 10)])
    shown = [t.vote(tid2, label, "ann") for label in ["ann", "ann", "ann", None, "ann"]]
    assert shown == [None, None, "ann", "ann", "ann"]
