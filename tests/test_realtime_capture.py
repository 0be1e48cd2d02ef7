"""Capture without a camera: a fake VideoCapture stands in to test threading and reopening."""
import threading
import time

import numpy as np
import pytest

from realtime.capture import VideoSource, parse_source
from realtime.errors import UserError


class FakeCamera:
    """Delivers ``frames`` frames (each a different grey), then fails like an unplugged camera."""

    opened = 0

    def __init__(self, plan):
        self.plan = plan
        FakeCamera.opened += 1
        self.frames = plan.pop(0) if plan else None
        self.n = 0

    def isOpened(self):
        return self.frames is not None

    def read(self):
        if self.frames is None or self.n >= self.frames:
            return False, None
        self.n += 1
        time.sleep(0.002)
        return True, np.full((48, 64, 3), self.n % 255, np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def camera(plan, **kw):
    return VideoSource(0, opener=lambda src: FakeCamera(plan), backoff=0.0, read_timeout=0.5, **kw)


def drain(source):
    n = 0
    while source.read() is not None:
        n += 1
    return n


def test_parse_source():
    assert parse_source(0) == 0 and parse_source(" 2 ") == 2 and parse_source("clip.mp4") == "clip.mp4"


@pytest.mark.parametrize("threaded", [False, True])
def test_camera_that_stops_is_reopened_then_ends_cleanly(threaded):
    FakeCamera.opened = 0
    source = camera([5, 3, None, None], threaded=threaded, retries=3)
    assert source.size == (64, 48) and source.fps == 30.0 and source.is_camera
    n = drain(source)
    source.close()
    # 5 frames, a reopen that gives 3 more, then a second outage with all 3 retries failing:
    # each outage gets its own ``retries`` tries, so 1 + 1 + 3 openings.
    assert FakeCamera.opened == 5
    assert (n == 8) if not threaded else (2 <= n <= 8)   # a threaded reader may skip to the newest frame
    assert source.read() is None


def test_camera_that_never_opens_is_a_user_error():
    with pytest.raises(UserError, match=r"camera 0 cannot be opened: .* another --source index, or play a video "
                                        r"file: --source video\.mp4"):
        camera([None])


def test_no_retries_means_stop_at_first_failure():
    FakeCamera.opened = 0
    source = camera([2, 10], threaded=False, retries=0)
    assert drain(source) == 2 and FakeCamera.opened == 1


def test_threaded_reader_never_blocks_on_a_slow_consumer():
    source = camera([400], threaded=True, retries=0)
    first = source.read()
    time.sleep(0.3)                 # a slow frame in the loop ...
    newest = source.read()          # ... and we get the newest frame, not a backlog
    assert first is not None and newest is not None and source._seq > 50
    source.close()
    assert not any(t.name == "camera-reader" and t.is_alive() for t in threading.enumerate())
