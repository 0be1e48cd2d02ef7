"""Writing outputs without ever destroying an input.

Two rules for every file a command writes (events, recordings, reports, trained models):

* it is never the same file as anything the command reads (source video, gallery, model files,
  config): compared by resolved path and by inode, so a hard link or a symlink is caught too;
* it is written under a temporary name in the same folder and renamed into place when complete,
  so a crash or a full disk never leaves a half-written file where a good one was.

Devices and pipes (``/dev/null``, ``/dev/full``, a FIFO) are written directly: they cannot be
renamed onto, and there is no good file there to lose.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Mapping

from realtime.errors import UserError
from realtime.paths import file_identity

PathLike = str | os.PathLike


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` are one file: the same resolved path, or the same inode."""
    a, b = Path(a), Path(b)
    if Path(os.path.realpath(a)) == Path(os.path.realpath(b)):
        return True
    ia = file_identity(a)
    return ia is not None and ia == file_identity(b)


Labelled = Mapping[str, PathLike | None] | Iterable[tuple[str, PathLike | None]]


def check_outputs_distinct(outputs: Labelled, inputs: Labelled) -> None:
    """Refuse (one line) any output that is one of the inputs, or the same file as another output.

    Labels are what the user should read ("--events", "the gallery"); None paths are skipped.
    """
    def pairs(named: Labelled) -> list[tuple[str, Path]]:
        items = named.items() if isinstance(named, Mapping) else named
        return [(label, Path(p)) for label, p in items if p is not None]

    outs, ins = pairs(outputs), pairs(inputs)
    for i, (label, path) in enumerate(outs):
        if written_in_place(path):
            continue
        for other, source in ins:
            if same_file(path, source):
                raise UserError(f"{label} {path} is {other} ({source}): an output never overwrites what "
                                f"the command reads; write to another file")
        for other, second in outs[i + 1:]:
            if not written_in_place(second) and same_file(path, second):
                raise UserError(f"{label} and {other} are the same file ({path}): give each its own file")


def written_in_place(path: PathLike) -> bool:
    """An existing device, FIFO or socket: written in place (no temp file, no rename)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def temp_path_for(path: PathLike) -> Path:
    """A new, unused file name beside ``path`` that keeps its suffix (OpenCV picks a video's
    container by it): ``out.mp4`` -> ``.out.tmp-k3j2x9.mp4``. The file is created empty, mode 0600."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent or ".")
    os.close(fd)
    return Path(name)


class PendingFile:
    """An output being written under a temporary name: :meth:`commit` renames it into place,
    :meth:`discard` removes it. A stream (device, FIFO) is written directly and needs neither."""

    def __init__(self, path: PathLike, label: str = "output"):
        self.path = Path(path)
        self.label = label
        self.direct = written_in_place(self.path)
        if self.path.is_dir():
            raise UserError(f"{label} {self.path} is a folder: give a file name")
        if not self.direct and not self.path.parent.is_dir():
            what = "is not a folder" if self.path.parent.exists() else "does not exist"
            raise UserError(f"{label} {self.path}: folder {self.path.parent} {what}: give a file in a folder "
                            f"you can write")
        try:
            self.temp = self.path if self.direct else temp_path_for(self.path)
        except OSError as err:
            raise UserError(f"{label} {self.path} cannot be written ({err.strerror or err}): give a file in a "
                            f"folder you can write") from None
        self.done = False

    def commit(self) -> Path:
        """Rename the finished temp file onto the final name (atomic on one file system)."""
        if not self.done and not self.direct:
            try:
                os.replace(self.temp, self.path)
            except OSError as err:
                self.discard()
                raise UserError(f"{self.label} {self.path} cannot be written ({err.strerror or err})") from None
        self.done = True
        return self.path

    def discard(self) -> None:
        """Remove the temp file (the final name, if it existed, is untouched)."""
        if not self.done and not self.direct:
            with contextlib.suppress(OSError):
                os.unlink(self.temp)
        self.done = True


@contextlib.contextmanager
def atomic_path(path: PathLike, label: str = "output") -> Iterator[Path]:
    """``with atomic_path(out) as tmp: write(tmp)``: renamed onto ``out`` on success, removed on error."""
    pending = PendingFile(path, label)
    try:
        yield pending.temp
    except BaseException:
        pending.discard()
        raise
    pending.commit()


class StagedFiles:
    """Several outputs written into a new private folder (mode 0700, an unpredictable name) inside
    ``out_dir``, then renamed onto their names in ``out_dir`` in the order they were asked for.

    Nobody else can create anything in that folder, so a symlink planted in a shared ``out_dir``
    (under a name a writer would use) is never followed; the rename replaces a link at the final
    name instead of writing through it. :func:`staged_files` removes the folder on an error, so
    ``out_dir`` is then as it was."""

    def __init__(self, out_dir: PathLike, label: str):
        self.out_dir, self.label = Path(out_dir), label
        try:
            self.folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.out_dir))
        except OSError as err:
            raise UserError(f"{label} {self.out_dir} cannot be written ({err.strerror or err}): give a folder you "
                            f"can write") from None
        self._names: list[str] = []

    def path(self, name: str) -> Path:
        """Where to write the output ``name`` (a plain file name)."""
        if Path(name).name != name:
            raise ValueError(f"{name!r} is not a plain file name")
        if name not in self._names:
            self._names.append(name)
        return self.folder / name

    def commit(self) -> None:
        try:
            for name in self._names:
                os.replace(self.folder / name, self.out_dir / name)
        except OSError as err:
            self.discard()
            raise UserError(f"{self.label} {self.out_dir / name} cannot be written ({err.strerror or err})") from None
        self.discard()

    def discard(self) -> None:
        import shutil
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def staged_files(out_dir: PathLike, label: str = "output") -> Iterator[StagedFiles]:
    """``with staged_files(out) as stage: write(stage.path("a.bin"))``: renamed into ``out`` on success."""
    stage = StagedFiles(out_dir, label)
    try:
        yield stage
    except BaseException:
        stage.discard()
        raise
    stage.commit()


def write_text_atomic(path: PathLike, text: str, label: str = "output") -> None:
    """Write a whole text file (a report) by temp file and rename."""
    _write_atomic(path, label, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes_atomic(path: PathLike, data: bytes, label: str = "output") -> None:
    """Write a whole binary file (an image) by temp file and rename."""
    _write_atomic(path, label, lambda tmp: tmp.write_bytes(data))


def _write_atomic(path: PathLike, label: str, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` under a temporary name, renamed onto ``path`` when complete; an OSError while
    writing is one UserError naming ``path`` (``label`` says which output it is)."""
    with atomic_path(path, label) as tmp:
        try:
            write(Path(tmp))
        except OSError as err:
            raise UserError(f"{label} {path} cannot be written ({err.strerror or err})") from None


class OutputStream:
    """A text output written line by line (``--events``): a temp file renamed into place by
    :meth:`commit`, or a device/FIFO written directly. Any write error becomes one UserError
    naming the file (``/dev/full``: no space left on device), never a traceback."""

    def __init__(self, path: PathLike, label: str):
        self.pending = PendingFile(path, label)
        self.label, self.path = label, self.pending.path
        try:
            self._file: IO[str] = open(self.pending.temp, "w", encoding="utf-8")
        except OSError as err:
            self.pending.discard()
            raise UserError(f"{label} {self.path} cannot be written ({err.strerror or err})") from None
        self.lines = 0

    def _failed(self, err: OSError) -> UserError:
        with contextlib.suppress(OSError):
            self._file.close()
        self.pending.discard()
        return UserError(f"{self.label} {self.path} cannot be written ({err.strerror or err}) after "
                         f"{self.lines} lines: free space or write elsewhere")

    def write(self, text: str) -> int:
        try:
            written = self._file.write(text)
        except OSError as err:
            raise self._failed(err) from None
        self.lines += text.count("\n")
        return written

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as err:
            raise self._failed(err) from None

    def commit(self) -> None:
        """Flush, close and rename into place."""
        if self.pending.done:
            return
        try:
            self._file.flush()
            self._file.close()
        except OSError as err:
            raise self._failed(err) from None
        self.pending.commit()

    def close(self) -> None:
        """Without :meth:`commit` first: drop the temp file (a crash leaves the old file as it was)."""
        if not self.pending.done:
            with contextlib.suppress(OSError):
                self._file.close()
            self.pending.discard()


def new_run_dir(base: PathLike, prefix: str = "") -> Path:
    """A folder name under ``base`` that does not exist yet: ``runs/20250101-120000/`` (``-2``, ... on a clash)."""
    import time
    stamp = prefix + time.strftime("%Y%m%d-%H%M%S")
    candidate, n = Path(base) / stamp, 1
    while candidate.exists():
        n += 1
        candidate = Path(base) / f"{stamp}-{n}"
    return candidate


def check_writable_folder(path: PathLike, label: str, undone: str) -> None:
    """Refuse (one line) a folder that cannot be written: a read-only file system, a parent that is
    immutable or not writable. A probe file is made in it (and the folder with its missing parents,
    removed again), so a long job finds out before it starts, not when it writes its results;
    ``undone`` says what was not done."""
    path = Path(path)
    made, folder = [], path
    while not os.path.lexists(folder) and folder.parent != folder:
        made.append(folder)
        folder = folder.parent
    try:
        for folder in reversed(made):
            os.mkdir(folder)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"{label} {path} cannot be written ({err.strerror or err}): {undone}; give a folder you "
                        f"can write") from None
    finally:
        for folder in made:            # deepest first: only what the probe made
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def check_output_dir(path: PathLike, overwrite: bool, label: str) -> Path:
    """Refuse an output folder that already holds files (a trained model, a report) unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{label} {path} is a file, not a folder: give a folder for the outputs")
    try:
        occupied = path.is_dir() and any(path.iterdir())
    except OSError as err:
        raise UserError(f"{label} {path} cannot be read ({err.strerror or err})") from None
    if occupied and not overwrite:
        raise UserError(f"{label} {path} already holds files (a model or a report): pass --overwrite to replace "
                        f"them, or give a new folder (the default is a new folder under runs/)")
    return path
