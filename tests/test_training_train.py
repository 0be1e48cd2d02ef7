"""training.train, the `python -m training` command's own parts (its end-to-end runs are in
test_training_cli.py): where a run writes, and --help for every flag."""
import argparse
from pathlib import Path


def test_training_writes_to_a_new_runs_folder_by_default():
    from realtime.config import PROJECT_ROOT, load_config
    from training.train import output_folder
    args = argparse.Namespace(overwrite=False, config=None)
    out = output_folder(load_config(), args)
    assert out.parent == PROJECT_ROOT / "runs" and not out.exists()
    assert "/runs/" in (PROJECT_ROOT / ".gitignore").read_text()


def test_training_flags_all_have_help():
    import training.train as train   # its module imports no TensorFlow
    source = Path(train.__file__).read_text()
    start = source.index("def parse_args")
    calls = source[start:source.index("return p.parse_args", start)].split("p.add_argument(")[1:]
    assert len(calls) >= 10 and all("help=" in call for call in calls), [c.split(",")[0] for c in calls if "help=" not in c]


def test_a_missing_calibration_people_file_is_named_by_its_own_setting(tmp_path, caplog):
    """It was reported as an --exclude-people file."""
    from realtime.config import load_config
    from training.train import load_calibration
    config = load_config(None, {"training.calibration_data": str(tmp_path),
                                "training.calibration_people": str(tmp_path / "missing.txt")})
    assert load_calibration(config) is None
    assert "training.calibration_people: " in caplog.text and "missing.txt not found" in caplog.text
    assert "--exclude-people" not in caplog.text
