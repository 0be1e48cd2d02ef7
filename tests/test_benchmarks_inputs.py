"""benchmarks.inputs: every benchmark finds the shared data the same way (--data, else $FACES_DATA) and
says in one line where to point it when neither names it, never guessing a folder."""
import os
import subprocess
import sys

import pytest

from benchmarks.inputs import DataError, data_folder
from testdata import ROOT


def test_the_data_folder_is_given_or_an_error_says_how(tmp_path):
    (tmp_path / "videos").mkdir()
    assert data_folder(str(tmp_path), ("videos",)) == tmp_path.resolve()
    with pytest.raises(DataError, match=r"no data: pass --data DIR or set \$FACES_DATA"):
        data_folder(None)
    with pytest.raises(DataError, match="lfw not found: point --data"):
        data_folder(tmp_path, ("videos", "lfw"))


@pytest.mark.parametrize("module", ["benchmarks", "benchmarks.detection", "benchmarks.strangers",
                                    "benchmarks.unknowns", "benchmarks.recording"])
def test_every_benchmark_without_data_is_one_line_error(module, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FACES_DATA"}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", module], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "error: no data: pass --data DIR or set $FACES_DATA to the shared faces data folder"
