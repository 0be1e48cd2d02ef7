"""No code path may deserialise with pickle: faces and galleries are biometric data, and a
pickled file is code that runs on load. The patterns are built from pieces so this file does
not match itself.
"""
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("realtime", "training", "tests", "benchmarks")

PICKLE = "pick" + "le"
FORBIDDEN = {
    "pickle import": re.compile(r"^\s*(import|from)\s+(c?" + PICKLE + r"|_" + PICKLE + r"|dill|joblib)\b", re.M),
    "c-pickle module": re.compile("c" + "Pickle"),
    "numpy allow-pickle on": re.compile("allow_" + PICKLE + r"\s*=\s*True"),
    "yaml load without safe_": re.compile(r"\byaml\s*\.\s*(load|load_all|full_load|unsafe_load)\s*\("),
    "unsafe YAML loader": re.compile(r"Loader\s*=\s*(yaml\s*\.\s*)?(Unsafe|Full)?Loader\b"),
    "pickle.loads/load": re.compile(r"\b" + PICKLE + r"\s*\.\s*loads?\s*\("),
}


def python_files():
    files = [p for folder in FOLDERS if (ROOT / folder).is_dir() for p in sorted((ROOT / folder).rglob("*.py"))]
    return files


def test_there_is_code_to_scan():
    names = {p.relative_to(ROOT).as_posix() for p in python_files()}
    assert {"realtime/config.py", "realtime/crops.py", "training/data.py"} <= names


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_no_pickle_or_unsafe_yaml_in_the_code(name):
    pattern = FORBIDDEN[name]
    hits = []
    for path in python_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            hits.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0).strip()}")
    assert not hits, f"{name} found:\n" + "\n".join(hits)


@pytest.mark.parametrize("snippet, name", [
    ("import " + PICKLE, "pickle import"),
    ("from c" + PICKLE + " import loads", "pickle import"),
    ("x = np.load(p, allow_" + PICKLE + "=True)", "numpy allow-pickle on"),
    ("import c" + "Pickle", "c-pickle module"),
    ("cfg = yaml" + ".load(text)", "yaml load without safe_"),
    ("cfg = yaml" + ".safe_load(text, Loader" + "=yaml.FullLoader)", "unsafe YAML loader"),
])
def test_the_patterns_catch_what_they_are_meant_to(snippet, name):
    """A scanner that matches nothing passes vacuously; prove each pattern bites."""
    assert FORBIDDEN[name].search(snippet)


@pytest.mark.parametrize("snippet", ["cfg = yaml.safe_load(text)", "np.load(p, allow_" + PICKLE + "=False)",
                                     "# no " + PICKLE + " anywhere"])
def test_the_patterns_leave_safe_code_alone(snippet):
    assert not any(p.search(snippet) for p in FORBIDDEN.values())


def test_crop_cache_format_loads_without_pickle(tmp_path):
    """The cache is written with plain string and uint8 arrays, so allow_pickle=False reads it."""
    from training.data import _read_cache, _write_cache

    path = tmp_path / "cache" / "crops.npz"
    crop = np.zeros((8, 8, 3), np.uint8)
    _write_cache(path, {"a|1|2": ("face", crop), "b|1|2": ("no_face", None)}, 8)
    with np.load(path, allow_pickle=False) as data:
        assert data["keys"].dtype.kind == "U" and data["crops"].dtype == np.uint8
        assert data["statuses"].tolist() == ["face", "no_face"]
    # and the training code's own reader (allow_pickle=False too) gets back what was written
    entries = _read_cache(path, 8)
    assert entries["b|1|2"] == ("no_face", None) and entries["a|1|2"][0] == "face"
    np.testing.assert_array_equal(entries["a|1|2"][1], crop)
