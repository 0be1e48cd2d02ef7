"""The per-photo score of the celebrity5 photo video (pure: frame labels in, share out)."""
from benchmarks.strangers import settled_share


def test_each_photo_is_judged_by_its_last_held_frame():
    truth = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    # a: Unknown while the vote settles, then right; b: right, then a wrong name at the end; c: no face at the end.
    shown = {0: None, 1: None, 2: "a", 3: "a", 4: "b", 5: "b", 6: "b", 7: "a", 8: "c", 9: "c", 10: "c"}
    assert settled_share(shown, truth, hold=4) == 1 / 3


def test_no_photos_scores_zero_not_a_division_error():
    assert settled_share({}, [], hold=8) == 0.0
