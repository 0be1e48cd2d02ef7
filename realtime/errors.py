"""The one exception type that reaches a user, and the wrapper every command runs under."""
from __future__ import annotations

import contextlib
import errno
import importlib
import importlib.util
import logging
import os
import re
import reprlib
import sys
import warnings
from typing import Callable, Iterator, Sequence


class UserError(Exception):
    """Bad input the user can fix; command-line entry points print it and exit non-zero.

    Raise it with a message that says what is wrong and what to do, e.g.
    ``UserError("models/ has no encoder.json: run `python -m training` first")``.
    """

    exit_code = 2


# Third-party loggers whose chatter is not ours: shown with -v only.
NOISY_LOGGERS = ("tensorflow", "absl", "keras", "h5py", "matplotlib", "PIL")


def setup_logging(verbose: bool = False, fmt: str = "%(levelname)s %(name)s: %(message)s") -> None:
    """Our log lines on stderr; third-party noise (TF/LiteRT native logs, Keras warnings) only with -v.

    Native libraries read their log level from the environment when they load, so this runs
    before anything imports TensorFlow or LiteRT.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt, datefmt="%H:%M:%S",
                        stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, PrintableFilter) for f in handler.filters):
            handler.addFilter(PrintableFilter())
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    # OpenCV's own "[ WARN:0@3.2] ... Stream timeout triggered" lines: what they mean is said in our
    # one-line messages (a stream that stops, a recording that fails); -v shows them.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    if "cv2" in sys.modules:
        import cv2
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    # 3 hides TF's C++ INFO/WARNING/ERROR lines (oneDNN notice, `failed call to cuInit` on CPU machines).
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")
    warnings.filterwarnings("ignore", category=UserWarning, message=r".*shuffle.*")


def require_modules(modules: Sequence[str], command: str, install: str) -> None:
    """Refuse at once, in one line, when a library ``command`` needs is not installed: before it reads a
    photo, not after (``python -m training`` in a ``pip install .`` environment, which has no TensorFlow)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"{command} needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                        f"not installed here: {install}")


def import_quietly(*modules: str) -> None:
    """Import libraries that write to file descriptor 2 as they load, with those lines hidden unless -v.

    TensorFlow prints `All log messages before absl::InitializeLog()`, the oneDNN notice and `Could not
    find cuda drivers` (twice) while it is imported, whatever ``TF_CPP_MIN_LOG_LEVEL`` says; once
    imported here, later ``import tensorflow`` / ``import keras`` lines load nothing and print nothing."""
    with quiet_native_output():
        for module in modules:
            importlib.import_module(module)


class PrintableFilter(logging.Filter):
    """Log lines never steer the terminal: a photo's file name or a name another program stored,
    holding an escape sequence or a newline, is spelled out (``\\x1b``), as in an error line.
    Debug lines (-v: third-party chatter) are left as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            message = record.getMessage()
            safe = one_line(message)
            if safe != message:
                record.msg, record.args = safe, ()
        return True


@contextlib.contextmanager
def opencv_silent() -> Iterator[None]:
    """No OpenCV log lines while inside (a failed codec probe, "Failed to write frame", a backend's
    multi-line open warnings): the caller says what went wrong, in one line. The level is restored after."""
    import cv2
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Silence what native code writes straight to file descriptor 2 (LiteRT's `Created TensorFlow Lite
    XNNPACK delegate` line), unless debug logging (-v) is on. Python's own stderr is flushed first."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run_command(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a command's ``main``; a :class:`UserError` becomes one line on stderr and its exit code.

    Unexpected exceptions still show their traceback: they are bugs, not bad input.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return int(main(argv) or 0)
    except UserError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:
            raise
        # A name over 255 bytes or a path over 4,096 (a typo, a pasted URL): wherever a command met it.
        name = err.filename if err.filename is not None else "a path"
        print(f"error: {one_line(str(name))} is too long a name ({err.strerror}): the system takes at most 255 "
              f"bytes a file or folder name and 4,096 a path; give a shorter one", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:  # Ctrl-C while starting or enrolling: nothing was half-written, say so
        print("interrupted (Ctrl-C): stopped, nothing was saved by the interrupted step", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE


def one_line(text: str) -> str:
    """``text`` as an error line: what steers a terminal spelled out, and any word (a path, a URL)
    over ``ECHO_LIMIT`` characters cut to its start and end (a 4,096-character URL is not echoed whole)."""
    from realtime.names import printable
    return _LONG_WORD.sub(_cut_word, printable(text))


def _cut_word(match: re.Match) -> str:
    word = match.group(0)
    return f"{word[:ECHO_LIMIT * 2 // 3]}...{word[-ECHO_LIMIT // 4:]} ({len(word):,} characters)"


# 128 + SIGINT, what a shell reports for a program Ctrl-C ended.
INTERRUPTED_EXIT_CODE = 130

# The most characters of a user's value (a name, a config value, a key) an error message repeats.
ECHO_LIMIT = 100
_LONG_WORD = re.compile(r"\S{%d,}" % (ECHO_LIMIT + 20))

_echo = reprlib.Repr()
_echo.maxstring = _echo.maxother = _echo.maxlong = ECHO_LIMIT
_echo.maxlist = _echo.maxtuple = _echo.maxdict = _echo.maxset = 8
_echo.maxlevel = 3


def shorten(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to about ``limit`` characters, never building the full repr of a huge value."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    try:
        text = _echo.repr(value)
    except ValueError:  # an int too long to print (Python refuses over 4,300 digits)
        text = f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= limit + 20 else text[:limit] + "..."


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 sample``, ``2 samples``, ``1 person``, ``3 people``: a count with its noun in the right number."""
    return f"{count} {noun}" if count == 1 else f"{count} {plural or noun + 's'}"
