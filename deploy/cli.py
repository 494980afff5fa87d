"""Shared CLI plumbing: turn library errors into one line on stderr and a non-zero exit."""
from __future__ import annotations

import os
import sys
from typing import Callable, TypeVar

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

T = TypeVar("T")

#: Exceptions that are the user's input, not our bug: print one line, exit 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError,
                                                IsADirectoryError, NotADirectoryError,
                                                FileExistsError, TypeError)


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_cli(fn: Callable[[], T]) -> T:
    """Run `fn`; a user-input error becomes `error: <one line>` and exit code 2."""
    try:
        return fn()
    except KeyboardInterrupt:
        fail("interrupted; rerun the same command to resume where possible", 130)
    except USER_ERRORS as e:
        fail(" ".join(str(e).split()) or e.__class__.__name__)
    raise AssertionError("unreachable")
