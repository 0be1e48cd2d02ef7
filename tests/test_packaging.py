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


def test_the_wheel_has_the_realtime_faces_command_and_no_training_dependencies(installed, tmp_path):
    import tomllib
    _, target = installed
    script = target / "bin" / "realtime-faces"
    assert script.is_file(), sorted(p.name for p in (target / "bin").iterdir()) if (target / "bin").is_dir() else target
    proc = subprocess.run([str(script), "--help"], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(target)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Live face recognition" in proc.stdout, proc.stderr
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    assert not any(name in runtime for name in ("tensorflow", "keras", "dlib")), runtime   # pip install . stays light
    assert any(d.startswith("tensorflow") for d in project["optional-dependencies"]["train"])


def test_requirements_install_this_checkout_so_the_api_works_from_any_folder(tmp_path):
    """README's one-line set-up, `pip install -r requirements.txt`, installs the checkout itself (editable):
    a script in the user's own folder imports realtime, and the realtime-faces command runs."""
    pytest.importorskip("setuptools")
    assert (ROOT / "requirements.txt").read_text().splitlines()[-1] == "-e ."
    src = tmp_path / "checkout"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in (n.decode() for n in tracked if n):
        if (ROOT / name).is_file() and not name.startswith("tests/"):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    venv = tmp_path / "venv"   # the dependencies are this machine's; nothing is downloaded (--no-index)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", "-r",
                           "requirements.txt"], cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    elsewhere = tmp_path / "my_project"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(python), "-c", "from realtime import api; print(api.__file__)"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == str(src / "realtime" / "api.py"), proc.stderr
    proc = subprocess.run([str(venv / "bin" / "realtime-faces"), "--help"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Live face recognition" in proc.stdout, proc.stderr
