"""training.lfw: the LFW protocol's pairs files and its ten-fold accuracy."""
import os
from pathlib import Path

import numpy as np
import pytest

from realtime.errors import UserError
from training import lfw

FACES_DATA = os.environ.get("FACES_DATA")


def test_ten_fold_accuracy_chooses_threshold_on_other_folds():
    distances = np.tile([0.1, 0.2, 0.8, 0.9], 10)
    same = np.tile([True, True, False, False], 10)
    folds = np.repeat(np.arange(10), 4)
    mean, std = lfw.ten_fold_accuracy(distances, same, folds)
    assert mean == 1.0 and std == 0.0


def test_read_pairs_parses_both_kinds_and_folds(tmp_path):
    text = "2\t1\nAnn\t1\t2\nBob\t1\tCid\t3\nDee\t2\t4\nEve\t1\tFay\t1\n"
    (tmp_path / "p.txt").write_text(text)
    pairs = lfw.read_pairs(tmp_path / "p.txt")
    assert [p.same for p in pairs] == [True, False, True, False]
    assert [p.fold for p in pairs] == [0, 0, 1, 1]
    assert lfw.pair_paths("/x", pairs[1]) == (Path("/x/Bob/Bob_0001.jpg"), Path("/x/Cid/Cid_0003.jpg"))
    assert lfw.people_in_pairs(tmp_path / "p.txt") == {"Ann", "Bob", "Cid", "Dee", "Eve", "Fay"}



def test_a_people_file_is_a_pairs_file_or_a_list_of_names(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\t1\nAlice_A\t1\t2\nBob_B\t1\tCarol_C\t3\n")
    names = tmp_path / "names.txt"
    names.write_text("# who\nDave_D\n\nErin_E\n")
    assert lfw.read_people_file(pairs) == {"Alice_A", "Bob_B", "Carol_C"}
    assert lfw.read_people_file(names) == {"Dave_D", "Erin_E"}


def test_a_missing_people_file_is_named_with_the_setting_it_came_from(tmp_path):
    """The calibration people's file was reported as an --exclude-people file."""
    with pytest.raises(UserError, match="^--exclude-people: .*missing.txt not found"):
        lfw.read_people_file(tmp_path / "missing.txt")
    with pytest.raises(UserError, match="^training.calibration_people: .*missing.txt not found"):
        lfw.read_people_file(tmp_path / "missing.txt", "training.calibration_people")

def test_malformed_pairs_file_is_a_user_error(tmp_path):
    (tmp_path / "p.txt").write_text("1\t5\nAnn\t1\n")
    with pytest.raises(UserError, match="malformed|promises"):
        lfw.read_pairs(tmp_path / "p.txt")


@pytest.mark.skipif(not FACES_DATA, reason="FACES_DATA not set: the LFW pairs files are not available")
def test_real_pairs_files_match_the_protocol():
    pairs = lfw.read_pairs(Path(FACES_DATA) / "lfw_pairs" / "pairs.txt")
    assert len(pairs) == 6000 and sum(p.same for p in pairs) == 3000
    dev_test = lfw.people_in_pairs(Path(FACES_DATA) / "lfw_pairs" / "pairsDevTest.txt")
    dev_train = lfw.people_in_pairs(Path(FACES_DATA) / "lfw_pairs" / "pairsDevTrain.txt")
    assert dev_test and not (dev_test & dev_train)  # View 1 has disjoint people
