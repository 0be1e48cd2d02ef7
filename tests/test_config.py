"""The config schema: every bad file or flag is one UserError naming the key or the file.

No data needed: these run everywhere.
"""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hostile_inputs import refusal_script, run_bounded
from realtime.config import (DEFAULT_CONFIG_PATH, Config, apply_overrides, camera_index, config_from_dict,
                             load_config)
from realtime.errors import UserError, run_command

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path) -> str:
    """The message of the UserError that loading ``path`` must raise; one line, naming the file."""
    with pytest.raises(UserError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_shipped_config_loads_and_equals_the_code_defaults():
    """config.yaml and the dataclass defaults are two copies of one truth: they must not drift."""
    assert load_config() == Config()


def test_shipped_config_spells_out_every_setting():
    """Every field appears in config.yaml (the user's documentation), and nothing else does."""
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    for section in dataclasses.fields(Config):
        in_code = {f.name for f in dataclasses.fields(section.default_factory())}
        assert set(raw[section.name]) == in_code, section.name


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "detection:\n  min_sise: 30\n")
    message = load_error(path)
    assert "detection.min_sise" in message and "min_size" in message  # lists the known keys


def test_unknown_section_is_named(tmp_path):
    assert "'detecton'" in load_error(write(tmp_path, "detecton:\n  min_size: 30\n"))


def test_wrong_type_names_key(tmp_path):
    message = load_error(write(tmp_path, "training:\n  margin: big\n"))
    assert "training.margin" in message and "'big'" in message


def test_bool_is_not_an_integer(tmp_path):
    assert "detection.min_size" in load_error(write(tmp_path, "detection:\n  min_size: true\n"))


def test_float_is_not_an_integer(tmp_path):
    assert "detection.min_neighbors" in load_error(write(tmp_path, "detection:\n  min_neighbors: 2.5\n"))


def test_negative_threshold_is_out_of_range(tmp_path):
    message = load_error(write(tmp_path, "recognition:\n  threshold: -0.5\n"))
    assert "recognition.threshold" in message and "at least" in message


def test_nan_threshold_is_rejected(tmp_path):
    """NaN passes every < and > check, so it needs its own rule."""
    assert "recognition.threshold" in load_error(write(tmp_path, "recognition:\n  threshold: .nan\n"))


def test_zero_min_size_is_out_of_range(tmp_path):
    assert "detection.min_size" in load_error(write(tmp_path, "detection:\n  min_size: 0\n"))


def test_value_not_among_choices(tmp_path):
    message = load_error(write(tmp_path, "training:\n  method: magic\n"))
    assert "training.method" in message and "triplet" in message


def test_invalid_yaml_names_file_and_line(tmp_path):
    message = load_error(write(tmp_path, "detection:\n  min_size: [30\nmodel: {\n"))
    assert "not valid YAML" in message and "line" in message


def test_missing_file_is_named(tmp_path):
    assert "not found" in load_error(tmp_path / "nope.yaml")


def test_folder_instead_of_file(tmp_path):
    assert "cannot be read" in load_error(tmp_path)


def test_top_level_list_names_file(tmp_path):
    assert "top level" in load_error(write(tmp_path, "- detection\n- model\n"))


def test_section_that_is_not_a_mapping(tmp_path):
    assert "detection" in load_error(write(tmp_path, "detection: 5\n"))


def test_empty_file_means_defaults(tmp_path):
    assert load_config(write(tmp_path, "# nothing set\n")) == Config()


def test_valid_partial_file_overrides_only_its_keys(tmp_path):
    config = load_config(write(tmp_path, "recognition:\n  threshold: 1\n"))
    assert config.recognition.threshold == 1.0 and isinstance(config.recognition.threshold, float)
    assert config.detection == Config().detection


def test_config_from_dict_without_source_keeps_config_prefix():
    with pytest.raises(UserError, match=r"^config: unknown key model\.depth"):
        config_from_dict({"model": {"depth": 3}})


@pytest.mark.parametrize("overrides, named", [
    ({"detection.min_sise": 3}, "detection.min_sise"),
    ({"nosuch.key": 3}, "nosuch.key"),
    ({"threshold": 0.5}, "threshold"),
    ({"recognition.threshold": -1.0}, "recognition.threshold"),
    ({"recognition.threshold": "low"}, "recognition.threshold"),
    ({"detection.min_size": 0}, "detection.min_size"),
    ({"training.epochs": 1.5}, "training.epochs"),
])
def test_bad_override_is_a_user_error_naming_the_key(overrides, named):
    with pytest.raises(UserError) as info:
        apply_overrides(Config(), overrides)
    assert named in str(info.value) and "\n" not in str(info.value)


def test_good_override_applies_and_none_means_not_given():
    config = apply_overrides(Config(), {"recognition.threshold": 1, "detection.min_size": None})
    assert config.recognition.threshold == 1.0
    assert config.detection.min_size == Config().detection.min_size


def test_load_config_applies_overrides_after_the_file(tmp_path):
    path = write(tmp_path, "detection:\n  min_size: 40\n")
    assert load_config(path, {"detection.min_size": 50}).detection.min_size == 50
    with pytest.raises(UserError, match="detection.min_size"):
        load_config(path, {"detection.min_size": -1})


def test_run_command_prints_one_line_and_exits_non_zero(tmp_path, capsys):
    """What a user sees for a bad config: one 'error:' line, no traceback."""
    path = write(tmp_path, "recognition:\n  threshold: -1\n")
    code = run_command(lambda argv: load_config(path))
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_every_registry_choice_in_the_schema_is_registered():
    """config.py cannot import the stages (they import it): the names it offers must be the ones they register."""
    from realtime.config import DETECTOR_BACKENDS, MATCH_MODES
    from realtime.detection import DETECTORS
    from realtime.matching import MATCHERS
    assert tuple(DETECTORS) == DETECTOR_BACKENDS and tuple(MATCHERS) == MATCH_MODES


def test_an_old_config_key_is_refused_with_its_new_name(tmp_path):
    from realtime.config import apply_overrides
    path = tmp_path / "old.yaml"
    path.write_text("recognition:\n  detect_every: 2\n")
    with pytest.raises(UserError, match="recognition.detect_every is now detection.every"):
        load_config(path)
    path.write_text("recognition:\n  batch_encode: false\n")
    with pytest.raises(UserError, match="recognition.batch_encode is no longer a setting"):
        load_config(path)
    with pytest.raises(UserError, match="recognition.vote_agree is now tracking.vote_agree"):
        apply_overrides(load_config(), {"recognition.vote_agree": 2})


CONFIG_SCRIPT = refusal_script("realtime.config.load_config", "loaded")


def alias_bomb(levels: int = 8) -> str:
    """The issue's bomb: recognition.gallery a list of anchors, each nine aliases of the one before."""
    items = ['&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "recognition:\n  gallery: [" + ", ".join(items) + "]\n"


def test_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(8))  # 9**9 values once expanded
    assert path.stat().st_size < 500
    out, peak = run_bounded(CONFIG_SCRIPT, path)
    assert "refused:" in out, out
    message = out.split("refused:")[1].strip()
    assert "aliases" in message and len(message) < 400 and "\n" not in message
    assert peak < 500, peak


def test_a_bad_value_is_echoed_in_at_most_about_100_characters(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("recognition:\n  gallery: [" + ", ".join(["x" * 50] * 200) + "]\n")
    with pytest.raises(UserError) as info:
        load_config(path)
    assert "recognition.gallery" in str(info.value) and str(info.value).count("x" * 50) <= 2
    path.write_text("detection:\n  " + "k" * 1000 + ": 1\n")  # YAML plain keys stop at 1024
    with pytest.raises(UserError) as info:
        load_config(path)
    assert "unknown key" in str(info.value) and "k" * 101 not in str(info.value)


def test_a_5001_digit_number_in_a_config_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("detection:\n  min_size: " + "9" * 5001 + "\n")
    message = load_error(path)                   # one line, naming the file and the key
    assert len(message) < 400 and "9" * 150 not in message, message
    assert str(path) in message and "detection.min_size" in message and "\n" not in message


def test_config_from_a_fifo_dev_zero_or_a_huge_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a FIFO nobody writes to: a blocking read would hang until the timeout
    result = subprocess.run([sys.executable, "-m", "realtime", "list", "--config", str(fifo)], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 2 and "FIFO" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(UserError, match="character device"):
        load_config("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    with pytest.raises(UserError, match="over the limit"):
        load_config(big)


def test_camera_index_is_validated_before_opencv(tmp_path):
    for value in (-1, -5, 100, "99999999999999999999", "2147483648"):
        with pytest.raises(UserError, match="out of range"):
            camera_index(value, "--source")
    assert camera_index("3", "--source") == 3
    path = tmp_path / "c.yaml"
    path.write_text("capture:\n  source: -1\n")
    with pytest.raises(UserError, match="capture.source"):
        load_config(path)


def test_config_threshold_above_2_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("recognition:\n  threshold: 3\n")
    with pytest.raises(UserError, match="recognition.threshold"):
        load_config(path)
