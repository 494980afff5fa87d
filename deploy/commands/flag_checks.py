"""Flag values checked by the flags' own validators, and a bad flag as ONE line with exit 2.

absl prints a usage hint and exits 1 for a bad flag value; the tools promise `error: <one
line>` and exit 2 for every bad input, so `main` parses the flags itself. No TensorFlow import:
`tools/adb_bench.py` uses this too and answers in under a second.
"""
from __future__ import annotations

import math
import re
import sys
from typing import Callable, Optional, Sequence

from absl import app, flags


def _parse(argv: Sequence[str]) -> list[str]:
    try:
        rest = flags.FLAGS(list(argv))
    except flags.Error as e:
        # a declared conflict (a multi-flag validator) says what to do itself; absl prefixes it with
        # every flag's value ("flags a=1, b=None, ...: "), which only buries it
        _exit(re.sub(r"^flags [^:]*: ", "", ' '.join(str(e).split())))
    if len(rest) > 1:  # absl leaves words without -- here; every tool would silently ignore them
        _exit(f"unexpected argument '{rest[1]}': every input is a flag (e.g. --precision a16w8); "
              "see --helpfull")
    return rest


def _exit(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(fn: Callable[[list[str]], object]) -> None:
    """`app.run(fn)`, but a bad or unknown flag, a declared conflict or a stray word is
    `error: <one line>`, exit 2."""
    app.run(fn, flags_parser=_parse)


def at_least(name: str, low: float, what: str = "") -> None:
    """--name must be >= low (None, an unset optional flag, passes)."""
    flags.register_validator(name, lambda v: v is None or v >= low,
                             message=f"--{name} must be >= {low:g}{what}")


def finite(*names: str) -> None:
    """Float flags must be finite numbers: NaN compares false with everything (routes nothing)
    and is not valid JSON in a report."""
    for n in names:
        flags.register_validator(n, lambda v: v is None or math.isfinite(v),
                                 message=f"--{n} must be a finite number")


def conflicts(names: Sequence[str], fn: Callable[[], Optional[str]]) -> None:
    """Declare, beside a tool's flags, which of `names` cannot go together (or would be silently
    ignored): `fn` returns the one-line reason or None. absl runs it with the other validators,
    so it is refused at parse time as `error: ...`, exit 2, before any work."""
    def check(_values: dict) -> bool:
        why = fn()
        if why:
            raise flags.ValidationError(why)
        return True
    flags.register_multi_flags_validator(list(names), check)


def present(*names: str) -> list[str]:
    """The given flags the user set on the command line, as `--name` (for conflict messages)."""
    return [f"--{n}" for n in names if flags.FLAGS[n].present]


def positive(*names: str) -> None:
    for n in names:
        at_least(n, 1)


def hw_text(name: str, *, allow_dynamic: bool = False, minimum: int = 8,
            maximum: Optional[int] = None) -> None:
    """--name is HxW (or a single side), sides in [minimum, maximum]; 'dynamic' only if allowed."""
    def ok(text: Optional[str]) -> bool:
        if text is None:
            return True
        if text.lower() in ("dynamic", "none", "any"):
            return allow_dynamic
        parts = text.lower().replace(",", "x").split("x")
        try:
            sides = [int(p) for p in parts]
        except ValueError:
            return False
        return len(sides) in (1, 2) and min(sides) >= minimum and (maximum is None or max(sides) <= maximum)

    limit = f"{minimum}..{maximum}" if maximum else f">= {minimum}"
    flags.register_validator(name, ok, message=f"--{name} must be HxW with sides {limit} (e.g. 64x64)"
                             + (" or 'dynamic'" if allow_dynamic else ""))
