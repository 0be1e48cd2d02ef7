"""Fixtures shared by test files."""
import os
import select
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("REALTIME_TEST_MODEL", ROOT / "models"))


@pytest.fixture
def xvfb_display():
    """A private Xvfb display (``":N"``) for real-window tests; skips, saying why, without Xvfb/xdotool.

    Xvfb picks a free display number itself and writes it when it accepts connections
    (``-displayfd``): no clash with another test run's display, no window opened too early.
    Key auto-repeat is off (``-r``): on a loaded machine xdotool can be paused between a key's
    press and release long enough for the server to repeat it (one space pausing and resuming)."""
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb or xdotool not installed (.ci/run installs them)")
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-r", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        number = b""
        deadline = time.time() + 30
        while not number.endswith(b"\n") and time.time() < deadline and xvfb.poll() is None:
            if select.select([read_end], [], [], 0.5)[0]:
                chunk = os.read(read_end, 16)
                if not chunk:
                    break
                number += chunk
        if not number.strip().isdigit():
            pytest.skip("Xvfb could not start")
        yield f":{number.strip().decode()}"
    finally:
        os.close(read_end)
        xvfb.terminate()
        xvfb.wait(timeout=10)


@pytest.fixture
def mount_tmpfs(tmp_path):
    """``mount_tmpfs(size, options)``: a new folder with a real tmpfs of ``size`` mounted on it (a
    disk that fills up, a read-only file system), unmounted after the test. Mounting needs root:
    the test skips, saying why, otherwise."""
    mounted = []

    def mount(size: str = "512k", options: str = "") -> "os.PathLike":
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(filter(None, [f"size={size}", options])),
                               "tmpfs", str(folder)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def fill_disk():
    """``fill_disk(folder)``: a file ``filler`` in ``folder`` written until its file system is full."""
    def fill(folder) -> None:
        fd = os.open(os.path.join(folder, "filler"), os.O_CREAT | os.O_WRONLY)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
    return fill


@pytest.fixture(scope="module")
def encoder():
    """The trained encoder in ``REALTIME_TEST_MODEL`` (default ``models/``), loaded once per test file."""
    from realtime.encoder import Encoder
    return Encoder(MODEL)


@pytest.fixture(scope="module")
def face_photos():
    """Real JPEG photos of celebrity5 (by their bytes) in which Haar finds exactly one face, with that
    face's box; skips, saying why, without FACES_DATA."""
    from realtime.config import DetectionConfig
    from realtime.detection import HaarDetector
    from realtime.images import read_image
    if not os.environ.get("FACES_DATA"):
        pytest.skip("FACES_DATA not set: point it at the shared data folder")
    found = []
    for path in sorted((Path(os.environ["FACES_DATA"]) / "celebrity5" / "train").glob("*/*.jpg")):
        data = path.read_bytes()
        if not data.startswith(b"\xff\xd8"):
            continue  # some .jpg files are PNGs: the truncation test wants a real JPEG
        boxes = HaarDetector(DetectionConfig()).detect(read_image(path))
        if len(boxes) == 1 and boxes[0][2] >= 60:
            found.append((path, boxes[0]))
        if len(found) == 4:
            return found
    pytest.skip("celebrity5 has too few single-face JPEGs")


@pytest.fixture
def haar_photos():
    """``haar_photos(second_look="yunet")``: the photo path as the shipped config builds it (Haar, the
    second look, YuNet alignment, 60 px crops)."""
    import dataclasses
    from realtime.config import AlignmentConfig, load_config
    from realtime.crops import FaceCropper

    def cropper(second_look: str = "yunet") -> FaceCropper:
        return FaceCropper(dataclasses.replace(load_config().detection, second_look=second_look),
                           AlignmentConfig(method="yunet"), 60)
    return cropper


@pytest.fixture(scope="module")
def server():
    """A PostgreSQL server (:class:`pgserver.Server`): the one `.ci/run` started (``REALTIME_TEST_PG``,
    ``REALTIME_TEST_PGDATA``, ``REALTIME_TEST_PGUSER``), else a private one started here with
    ``initdb``/``pg_ctl``. Without PostgreSQL the tests skip, saying why; in CI (``CI`` set, or a
    server announced by ``REALTIME_TEST_PG``) they fail instead, so a CI run cannot pass by skipping them."""
    import pgserver
    required = bool(os.environ.get("CI")) or bool(os.environ.get("REALTIME_TEST_PG"))
    own = None
    try:
        if os.environ.get("REALTIME_TEST_PG"):
            env = {k: os.environ.get(k, "") for k in ("REALTIME_TEST_PG", "REALTIME_TEST_PGDATA", "REALTIME_TEST_PGUSER")}
        else:
            own = Path(tempfile.mkdtemp(prefix="realtime-pg-"))
            env = pgserver.start(own)
        data = Path(env["REALTIME_TEST_PGDATA"])
        srv = pgserver.Server(env["REALTIME_TEST_PG"], data, env["REALTIME_TEST_PGUSER"] or None,
                             pgserver.running_options(data))
        srv.sql("SELECT 1")
    except Exception as err:   # no initdb, not allowed to run it, server not answering: say which
        if own is not None:
            if (own / "data" / "postmaster.pid").exists():
                pgserver.stop(own / "data", pgserver.os_user())
            shutil.rmtree(own, ignore_errors=True)
        if required:
            pytest.fail(f"CI: the PostgreSQL gallery tests must run, but no server is usable: {err}")
        pytest.skip(f"no PostgreSQL server can be started here: {err}")
    yield srv
    if own is not None:
        pgserver.stop(srv.data, srv.user)
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture
def db(server):
    """A fresh, empty database for one test; its URL."""
    name = f"g_{uuid.uuid4().hex[:12]}"
    server.sql(f"CREATE DATABASE {name}")
    yield server.url.rsplit("/", 1)[0] + f"/{name}"
    try:
        server.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except Exception:   # a test that stopped the server may leave it down; the module's server is removed anyway
        pass
