"""Small pure parts of the benchmarks: the per-photo score of the celebrity5 photo video, the model path shown."""
from benchmarks.strangers import settled_share


def test_each_photo_is_judged_by_its_last_held_frame():
    truth = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    # a: Unknown while the vote settles, then right; b: right, then a wrong name at the end; c: no face at the end.
    shown = {0: None, 1: None, 2: "a", 3: "a", 4: "b", 5: "b", 6: "b", 7: "a", 8: "c", 9: "c", 10: "c"}
    assert settled_share(shown, truth, hold=4) == 1 / 3


def test_no_photos_scores_zero_not_a_division_error():
    assert settled_share({}, [], hold=8) == 0.0


def test_a_model_below_the_working_directory_is_named_relative_to_it(tmp_path, monkeypatch):
    from benchmarks.__main__ import shown_path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert shown_path(tmp_path / "models") == "models"
    assert shown_path(tmp_path.parent) == str(tmp_path.parent.resolve())
