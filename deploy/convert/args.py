"""Argument checks at the public API's door (deploy.quantize, deploy.search, ...).

A wrong type or range passed from Python should be one UserInputError naming the argument, not
an AttributeError or a ValueError from deep inside TensorFlow minutes later. Pure (no TensorFlow).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional

from deploy.errors import UserInputError


def number(name: str, value: Any, *, minimum: Optional[float] = None) -> float:
    """A finite real number (not a string, not a bool), >= minimum when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserInputError(f"{name} must be a number, not {type(value).__name__} {value!r}", option=name, value=value)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        limit = f" >= {minimum:g}" if minimum is not None else ""
        raise UserInputError(f"{name} must be a finite number{limit}, not {value!r}", option=name, value=value)
    return float(value)


def count(name: str, value: Any, *, minimum: int = 1) -> int:
    """A whole number >= minimum (not a float, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise UserInputError(f"{name} must be a whole number >= {minimum}, not {value!r}", option=name, value=value)
    return int(value)


def input_size(value: Any, *, allow_none: bool = True, minimum: int = 8) -> Optional[tuple[int, int]]:
    """(H, W) of whole numbers >= minimum, or None (dynamic) where allowed."""
    if value is None and allow_none:
        return None
    try:
        h, w = value
    except (TypeError, ValueError):
        raise UserInputError(f"input_size must be (height, width), e.g. (64, 64), not {value!r}") from None
    for side in (h, w):
        if isinstance(side, bool) or not isinstance(side, numbers.Integral) or side < minimum:
            raise UserInputError(f"input_size {tuple(value)!r}: sides must be whole numbers >= {minimum}, "
                                 "e.g. (64, 64)")
    return int(h), int(w)
