"""A private PostgreSQL server for the gallery tests (and for `.ci/run`).

``python tests/pgserver.py start DIR`` runs ``initdb`` into DIR and starts the server on 127.0.0.1
and a free port, as a non-root user (PostgreSQL refuses to run as root: root runs it as the
``postgres`` user, created if missing), and prints the ``export`` lines the tests read:
``REALTIME_TEST_PG`` (the superuser's URL, trust login from 127.0.0.1), ``REALTIME_TEST_PGDATA``
and ``REALTIME_TEST_PGUSER`` (who may run ``pg_ctl`` on it). ``stop DIR`` stops it.

The server's pg_hba.conf lets the ``gallery`` superuser in without a password and asks every
other role for one (scram-sha-256), so the tests can check a refused login for real.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/bin")
SUPERUSER = "gallery"


def tool(name: str) -> str | None:
    for folder in BIN_DIRS:
        if os.access(Path(folder) / name, os.X_OK):
            return str(Path(folder) / name)
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def os_user() -> str | None:
    """Who runs the server: ourselves, or (as root) the ``postgres`` user, created if missing."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
                       check=True, capture_output=True)
    return "postgres"


def as_user(user: str | None, argv: list[str]) -> list[str]:
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


def pg_ctl(data: Path, user: str | None, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(as_user(user, [tool("pg_ctl"), "-D", str(data), *args]), capture_output=True, text=True,
                          timeout=timeout)


def start(folder: Path) -> dict[str, str]:
    """Start a fresh server under ``folder``; returns the environment the tests read. Raises
    RuntimeError saying why when it cannot."""
    if not tool("initdb") or not tool("pg_ctl"):
        raise RuntimeError("PostgreSQL's initdb/pg_ctl are not installed")
    user = os_user()
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    if user is not None:
        shutil.chown(folder, user)
    os.chmod(folder, 0o700)
    proc = subprocess.run(as_user(user, [tool("initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                                         "-E", "UTF8", "--no-locale"]), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"initdb failed: {proc.stderr.strip()[-300:]}")
    (data / "pg_hba.conf").write_text(f"local all {SUPERUSER} trust\nhost all {SUPERUSER} 127.0.0.1/32 trust\n"
                                      "host all all 127.0.0.1/32 scram-sha-256\n")
    port = free_port()
    proc = pg_ctl(data, user, "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "-l", str(folder / "server.log"), "-w", "start")
    if proc.returncode != 0:
        log = (folder / "server.log").read_text(errors="replace")[-300:] if (folder / "server.log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {proc.stderr.strip()[-300:]} {log}")
    return {"REALTIME_TEST_PG": f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres",
            "REALTIME_TEST_PGDATA": str(data), "REALTIME_TEST_PGUSER": user or ""}


def stop(data: Path, user: str | None, mode: str = "fast") -> None:
    pg_ctl(data, user, "-m", mode, "-w", "stop")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: python tests/pgserver.py start|stop DIR")
    where = Path(sys.argv[2]).resolve()
    if sys.argv[1] == "stop":
        stop(where / "data", os_user())
        sys.exit(0)
    try:
        env = start(where)
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        sys.exit(f"cannot start PostgreSQL: {err}")
    for key, value in env.items():
        print(f"export {key}='{value}'")


@dataclass
class Server:
    """A running server the tests may stop, start again and send SQL to."""
    url: str            # the superuser's URL (trust login from 127.0.0.1)
    data: Path
    user: str | None    # the OS user pg_ctl must run as (None: ourselves)
    options: str        # the -o options it was started with (a restart needs them again)

    def stop(self, mode: str = "immediate") -> None:
        proc = pg_ctl(self.data, self.user, "-m", mode, "-w", "stop")
        assert proc.returncode == 0, proc.stderr

    def start(self) -> None:
        # A restart after an immediate stop has now and then sat in pg_ctl's wait without the new
        # server writing a line to its log (seen under a full test run's load, never alone); a
        # second start gets it up, and what the test checks is the live loops, not pg_ctl.
        for attempt in range(3):
            proc = pg_ctl(self.data, self.user, "-o", self.options, "-l",
                          str(self.data.parent / "server.log"), "-t", "20", "-w", "start", timeout=40)
            if proc.returncode == 0:
                return
            pg_ctl(self.data, self.user, "-m", "immediate", "-w", "stop", timeout=40)
        log = self.data.parent / "server.log"
        assert proc.returncode == 0, proc.stderr + (log.read_text(errors="replace")[-1500:] if log.exists() else "")

    def sql(self, statement: str, db: str = "postgres") -> None:
        import psycopg
        with psycopg.connect(self.url.rsplit("/", 1)[0] + f"/{db}", autocommit=True) as conn:
            conn.execute(statement)


def running_options(data: Path) -> str:
    """The options the running server was started with (postmaster.opts), for a restart."""
    words = [w.strip('"') for w in (data / "postmaster.opts").read_text().split()]
    port, sockets = words[words.index("-p") + 1], words[words.index("-k") + 1]
    return f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"


class StallingProxy:
    """A TCP proxy on 127.0.0.1 in front of the server that can stop forwarding without closing
    anything (:meth:`stall`): what a client sees of a network partition or a stopped server
    process, whose connections stay open and never answer. :meth:`resume` forwards again."""

    def __init__(self, port: int):
        import threading
        self._target = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """``url`` (of the server) through the proxy."""
        return url.replace(f":{self._target}/", f":{self.port}/")

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def _accept(self) -> None:
        import threading
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self._target))
            except OSError:
                return
            self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                if self._closed:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        self._listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
