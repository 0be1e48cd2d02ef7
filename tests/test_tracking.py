"""realtime.tracking: tracks across frames, when a face is encoded again, and the name it shows."""
import numpy as np

from realtime.tracking import DECIDING, NAMED, UNKNOWN, Tracker, vote

EMB = np.zeros(4, np.float32)


def answer(t: Tracker, tid: int, label, nearest=None, sure=False, frame=0, distance=0.5):
    """One encoding's answer for track ``tid``; what the face shows afterwards."""
    t.encoded(tid, frame, EMB, label, nearest, distance, sure=sure)
    return t.tracks[tid].shown


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
    shown = [answer(t, tid, label) for label in ["ann", "ann", None, "ann", "bob", "ann"]]
    assert shown == ["ann", "ann", "ann", "ann", "ann", "ann"]
    assert vote(["a", "b"]) == "b" and vote([]) is None
    t.reset()
    assert answer(t, tid, "bob") == "bob"


def test_a_name_needs_agreeing_frames_before_it_shows():
    t = Tracker(vote_frames=5, vote_agree=3)
    (tid,) = t.update([(0, 0, 10, 10)])
    # One frame that names someone (a stranger's bad frame) never shows that name ...
    shown = [answer(t, tid, label) for label in [None, "bob", None, None, "ann", "ann", "ann", None, "bob"]]
    assert shown == [None, None, None, None, None, None, "ann", "ann", "ann"]
    # ... and unknown frames count against a name: 2 of 5 is not enough.
    assert vote(["ann", None, None, "ann", None], agree=3) is None
    assert vote(["ann", "bob", "ann", "bob", "ann"], agree=3) == "ann"
    assert vote(["ann", "bob", "bob", "ann"], agree=2) == "ann"   # a tie: the most recent


def test_a_sure_match_is_named_at_once_and_a_borderline_one_is_deciding():
    t = Tracker(vote_frames=5, vote_agree=3)
    sure, borderline = t.update([(0, 0, 10, 10), (100, 0, 10, 10)])
    assert answer(t, sure, "ann", "ann", sure=True) == "ann" and t.tracks[sure].state == NAMED
    assert answer(t, sure, "ann", "ann") == "ann"                 # it stays while each encoding gives it
    assert answer(t, borderline, "bob", "bob") is None and t.tracks[borderline].state == DECIDING
    assert answer(t, borderline, "bob", "bob") is None
    assert answer(t, borderline, "bob", "bob") == "bob"           # the third agreeing answer names him
    (far,) = t.update([(300, 0, 10, 10)])
    assert answer(t, far, None, "ann") is None and t.tracks[far].state == UNKNOWN


def test_a_face_that_replaces_another_in_the_same_place_never_shows_its_name():
    t = Tracker(vote_frames=5, vote_agree=3)
    box = (0, 0, 10, 10)
    (tid,) = t.update([box])
    # ann sits there for five frames ...
    assert [answer(t, tid, "ann", "ann") for _ in range(5)][-1] == "ann"
    # ... then a stranger takes her place at once: the box overlaps, the track goes on, and ann's
    # four remaining votes would outnumber the stranger's Unknown frames for two frames.
    (same,) = t.update([box])
    assert same == tid
    assert vote(["ann", "ann", "ann", "ann", None], agree=3) == "ann"
    stranger = [answer(t, tid, None, "bob") for _ in range(5)]      # bob: the nearest, too far to name
    assert stranger == [None] * 5
    # ann's own frame too far to name (a blink) keeps her name: she is still the nearest.
    (tid2,) = t.update([(50, 50, 10, 10)])
    shown = [answer(t, tid2, label, "ann") for label in ["ann", "ann", "ann", None, "ann"]]
    assert shown == [None, None, "ann", "ann", "ann"]


def test_a_face_is_encoded_when_new_undecided_moved_or_due_and_not_otherwise():
    t = Tracker(vote_frames=3, vote_agree=2, encode_every=4, encode_iou=0.7)
    (tid,) = t.update([(0, 0, 100, 100)])
    assert t.due(tid, 0)                                          # new
    answer(t, tid, "ann", "ann", sure=True, frame=0)
    assert not t.due(tid, 1) and not t.due(tid, 3)                # named, still, encoded 1-3 frames ago
    assert t.due(tid, 4)                                          # every 4 frames
    t.update([(40, 0, 100, 100)])                                 # moved: overlaps where it was encoded < 0.7
    assert t.due(tid, 1)
    _, other = t.update([(40, 0, 100, 100), (400, 0, 100, 100)])
    answer(t, other, "bob", "bob", frame=1)                       # deciding: encoded again on every frame
    assert t.tracks[other].state == DECIDING and t.due(other, 2)
    *_, stranger = t.update([(40, 0, 100, 100), (400, 0, 100, 100), (800, 0, 100, 100)])
    for frame in range(3):                                        # an unknown face: until its vote is full
        assert t.due(stranger, frame)
        answer(t, stranger, None, "ann", frame=frame)
    assert not t.due(stranger, 3) and t.due(stranger, 6)


def test_a_box_without_a_face_is_hidden_until_an_encoding_finds_one():
    t = Tracker(encode_every=2)
    (tid,) = t.update([(0, 0, 10, 10)])
    t.not_a_face(tid, 0)
    track = t.tracks[tid]
    assert not track.is_face and track.embedding is None and not t.due(tid, 1) and t.due(tid, 2)
    answer(t, tid, "ann", "ann", sure=True, frame=2)
    assert track.is_face and track.shown == "ann"
