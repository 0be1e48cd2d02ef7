"""pyproject.toml: the wheel holds every module and the shipped model, and `python -m realtime` runs from
another folder with only the installed files (a copy of the tree is built, so the checkout stays clean)."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, and the folder it was installed into (pip --target, no dependencies, no network)."""
    pytest.importorskip("setuptools")
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "config.yaml"):
        shutil.copy(ROOT / name, src)
    for folder in ("realtime", "training", "models"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.keras"))
    wheels = tmp / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = wheels.glob("*.whl")
    target = tmp / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return wheel, target


def test_wheel_holds_every_module_the_model_and_the_config(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("realtime", "training"):
        for module in (ROOT / package).rglob("*.py"):
            assert module.relative_to(ROOT).as_posix() in names, module
    for model_file in ("encoder.tflite", "encoder.json"):
        assert f"realtime/_shipped/models/{model_file}" in names
    assert "realtime/_shipped/config.yaml" in names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_installed_program_runs_from_another_folder_with_the_shipped_model(installed, tmp_path):
    _, target = installed
    env = dict(os.environ, PYTHONPATH=str(target))
    code = ("import realtime.config as c, realtime.api as a; print(c.PROJECT_ROOT); "
            "print(a.default_recognizer().encoder.model_dir)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    root, model = proc.stdout.split()
    assert root == str(target / "realtime" / "_shipped") and model == str(target / "realtime" / "_shipped" / "models")
    proc = subprocess.run([sys.executable, "-m", "realtime", "--help"], cwd=tmp_path, env=dict(env, COLUMNS="400"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage: python -m realtime" in proc.stdout, proc.stderr
    assert f"(default: {target / 'realtime' / '_shipped' / 'config.yaml'})" in proc.stdout
