"""Hostile inputs made in a test's tmp folder, and a run whose peak memory is measured: a PNG that
claims any size (a decompression bomb costs no RAM to make), and ``run_bounded`` for the memory cases."""
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def png(width: int, height: int, rows=None, color_type: int = 0) -> bytes:
    """A valid 8-bit PNG; ``rows`` None: all-zero rows compressed row by row (a bomb costs ~1 s, no RAM)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    channels = {0: 1, 2: 3}[color_type]
    packer = zlib.compressobj(9)
    row = bytes(1 + width * channels)
    data = b"".join(packer.compress(row if rows is None else b"\0" + rows[y].tobytes()) for y in range(height))
    data += packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


WRAPPER = r"""
import json, resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120)
print(json.dumps({"rc": run.returncode, "out": run.stdout, "err": run.stderr[-4000:],
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_bounded(code: str, *args, timeout=150):
    """Run ``code`` in a fresh interpreter under a wrapper whose only child it is, so the wrapper's
    ``getrusage(RUSAGE_CHILDREN)`` is exactly that run's peak RSS. Returns (stdout, peak MiB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    wrapper = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-c", code, *map(str, args)],
                             capture_output=True, text=True, env=env, timeout=timeout)
    assert wrapper.returncode == 0, wrapper.stderr[-2000:]
    result = json.loads(wrapper.stdout)
    assert result["rc"] == 0, result["err"]
    return result["out"], result["peak_mb"]


def refusal_script(call: str, accepted: str) -> str:
    """A script for :func:`run_bounded` that runs ``call`` (``"module.function"``) on its first argument
    and prints ``accepted``, or ``refused: `` and the UserError's message."""
    module, function = call.rsplit(".", 1)
    return (f"import sys\nfrom {module} import {function}\nfrom realtime.errors import UserError\n"
            f"try:\n    {function}(sys.argv[1])\n    print({accepted!r})\n"
            f"except UserError as err:\n    print('refused:', err)\n")
