"""What a path really is, and reading a regular file with a size limit.

A FIFO would block a reader forever, ``/dev/zero`` never ends, and a symlink loop or a broken
link is not "not found": each is refused by name, in one line, before anything is read.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from realtime.errors import UserError


def path_state(path: str | Path) -> str:
    """``"a folder"``, ``"a FIFO (named pipe)"``, ``"a symlink loop"``, ``"missing"``... for messages."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symlink loop"
        if err.errno == errno.EACCES:
            return "not accessible (permission denied on it or a folder above it)"
        if err.errno == errno.ENOTDIR:
            return "missing (a part of the path is a file, not a folder)"
        if os.path.islink(path):
            return "a broken symlink (its target does not exist)"
        return "missing" if err.errno == errno.ENOENT else f"not accessible ({err.strerror or err})"
    return kind(mode)


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path`` now (through a symlink), or None when there is none:
    the same file under two names, or another file moved onto a name, is told by it."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class NotReadable(UserError):
    """A path that is not a readable regular file within the limit; ``reason`` says why, without the path."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def read_regular_file(path: str | Path, what: str, max_bytes: int, hint: str = "") -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``; else a one-line :class:`NotReadable`.

    Opened without blocking and checked on the open descriptor, so a FIFO or device swapped in
    after a check is still refused, and the size is known before a byte is read.
    """
    path = Path(path)

    def refuse(reason: str) -> NotReadable:
        said = f"cannot be read: it {reason}" if reason.startswith("is ") else reason
        return NotReadable(f"{what} {path} {said}" + (f": {hint}" if hint else ""), reason)

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        state = path_state(path)
        if state == "missing":
            raise refuse("not found") from None
        if state == "a regular file":
            raise refuse(f"cannot be read ({err.strerror or err})") from None
        raise refuse(f"is {state}, not a file that can be read") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refuse(f"is {kind(info.st_mode)}, not a regular file")
        if info.st_size > max_bytes:
            raise refuse(f"is {info.st_size:,} bytes, over the limit of {max_bytes:,}")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:  # the file may grow after fstat: never read past the limit
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise refuse(f"is over the limit of {max_bytes:,} bytes")
        return b"".join(chunks)
    except OSError as err:
        raise refuse(f"cannot be read ({err.strerror or err})") from None
    finally:
        os.close(fd)


def make_private_folders(folder: str | Path) -> None:
    """``folder`` and every missing folder above it, each mode 0700 whatever the umask
    (``mkdir(parents=True)`` gives the parents 0777 less the umask: 0777 under ``umask 000``)."""
    folder = Path(folder)
    missing = []
    while not os.path.lexists(folder):
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:    # made meanwhile by another process: left as it is
            continue
        os.chmod(path, 0o700)      # the umask may have taken bits away (umask 0277 would leave 0500)
