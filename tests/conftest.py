"""Fixtures shared by test files."""
import os
import shutil
import subprocess
import time

import pytest


@pytest.fixture
def xvfb_display():
    """A private Xvfb display (``":N"``) for real-window tests; skips, saying why, without Xvfb/xdotool."""
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb or xdotool not installed (.ci/run installs them)")
    display = f":{90 + (os.getpid() + time.monotonic_ns()) % 400}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        if xvfb.poll() is not None:
            pytest.skip("Xvfb could not start")
        yield display
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
