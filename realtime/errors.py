"""The one exception type that reaches a user, and the wrapper every command runs under."""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable, Sequence


class UserError(Exception):
    """Bad input the user can fix; command-line entry points print it and exit non-zero.

    Raise it with a message that says what is wrong and what to do, e.g.
    ``UserError("models/ has no encoder.json: run `python -m training` first")``.
    """

    exit_code = 2


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def run_command(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a command's ``main``; a :class:`UserError` becomes one line on stderr and its exit code.

    Unexpected exceptions still show their traceback: they are bugs, not bad input.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return int(main(argv) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
