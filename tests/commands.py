"""Running ``python -m realtime`` in tests as a user would (in this process or a child one), and reading
the one ``error:`` line a refused command must print."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child_env() -> dict:
    """A child ``python -m realtime``'s environment: this checkout on the path, output unbuffered,
    TensorFlow quiet, and no DISPLAY (headless means headless, even on a desktop)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("DISPLAY", None)
    return env


def cli(*args, cwd=None, timeout=120, env=None) -> subprocess.CompletedProcess:
    """``python -m realtime ARGS`` in a child process (``env`` added to :func:`child_env`'s), output captured."""
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], cwd=cwd or ROOT,
                          env={**child_env(), **(env or {})}, capture_output=True, text=True, timeout=timeout)


def run_main(capsys, *argv) -> tuple[int, str, str]:
    """``python -m realtime ARGV`` in this process: (exit status, stdout, stderr). An unexpected exception
    (a traceback for the user) propagates and fails the test."""
    from realtime.__main__ import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(code: int, err: str) -> str:
    """The one ``error:`` line of a refused command: exit status 2, no traceback."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """:func:`error_line` of a child process."""
    return error_line(proc.returncode, proc.stderr)


def events_of(path) -> tuple[list[dict], dict]:
    """An ``--events`` file's frame lines and its closing summary."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    assert "summary" in rows[-1]
    return rows[:-1], rows[-1]["summary"]
