"""A bounded wait on a database connection.

A server that stops answering without closing the connection (a network partition, a stopped
server process) would block a call forever: the server's statement and lock timeouts cannot fire
when the server is not running, and TCP keepalives only notice an idle link. So each call runs
under a deadline after which its socket is shut down from our side: the blocked call fails at
once, as if the server had gone, the connection is dropped, and the caller says so in one line.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Iterator


class Deadline:
    """One call at a time on one connection; :meth:`cut` also ends it early (a closing store)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.expired = False        # the last call was cut (its error means "no answer in time")
        self.closing = False        # ... because the store was closing, not because time ran out
        self.running = threading.Lock()   # held while a call runs: a closing store waits for it

    @contextlib.contextmanager
    def bound(self, fd: int, seconds: float) -> Iterator[None]:
        """Run the block with the socket ``fd`` cut after ``seconds``."""
        with self.running:
            with self._lock:
                self._fd, self.expired, self.closing = fd, False, False
            timer = threading.Timer(seconds, self.cut)
            timer.daemon = True
            timer.start()
            try:
                yield
            finally:
                with self._lock:        # first: a timer firing now finds no call to cut
                    self._fd = None
                timer.cancel()

    def cut(self, closing: bool = False) -> bool:
        """Shut the running call's socket down (both ways); False when no call is running.
        ``closing``: the store is being closed (the program ends), time had not run out."""
        with self._lock:
            if self._fd is None:
                return False
            self.expired, self.closing = True, closing
            try:
                with socket.socket(fileno=os.dup(self._fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:     # already closed by the peer: the call fails by itself
                pass
            return True
