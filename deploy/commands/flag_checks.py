"""Flag values checked by the flags' own validators, and a bad flag as ONE line with exit 2.

absl prints a usage hint and exits 1 for a bad flag value; the tools promise `error: <one
line>` and exit 2 for every bad input, so `main` parses the flags itself. No TensorFlow import:
`tools/adb_bench.py` uses this too and answers in under a second.
"""
from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence

from absl import app, flags


def _parse(argv: Sequence[str]) -> list[str]:
    try:
        return flags.FLAGS(list(argv))
    except flags.Error as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        raise SystemExit(2) from None


def main(fn: Callable[[list[str]], object]) -> None:
    """`app.run(fn)`, but a bad or unknown flag is `error: <one line>`, exit 2."""
    app.run(fn, flags_parser=_parse)


def at_least(name: str, low: float, what: str = "") -> None:
    """--name must be >= low (None, an unset optional flag, passes)."""
    flags.register_validator(name, lambda v: v is None or v >= low,
                             message=f"--{name} must be >= {low:g}{what}")


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
