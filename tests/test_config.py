"""The config schema: every bad file or flag is one UserError naming the key or the file.

No data needed: these run everywhere.
"""
import dataclasses

import pytest
import yaml

from realtime.config import (DEFAULT_CONFIG_PATH, Config, apply_overrides, config_from_dict,
                             load_config)
from realtime.errors import UserError, run_command


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
