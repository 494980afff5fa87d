"""Precision names, defined once: every CLI flag and API argument is normalised here, at the door.

Two vocabularies name the same things. A whole model is `float`, `fp16`, `int8` (int8
activations and weights) or `a16w8` (int16 activations, int8 weights: TFLite's "16x8"); a
policy's layer is `a8w8`, `a16w8` or `float`. `int8` and `a8w8` are one precision, and so are
`a16w8` and `int16x8`: each name is accepted wherever the other is, and turned into the
canonical name of the vocabulary at hand before anything else looks at it.
"""
from __future__ import annotations

from deploy.errors import UserInputError

#: A whole model's precisions (canonical names).
UNIFORM = ("float", "fp16", "int8", "a16w8")
#: A policy layer's precisions (canonical names). Weights are never int16 (LiteRT has no kernels).
LAYER = ("a8w8", "a16w8", "float")
#: Other names of the same precisions -> the uniform name.
ALIASES = {"a8w8": "int8", "int16x8": "a16w8"}
#: Every name a uniform-precision flag accepts (for absl enums): canonical first, then aliases.
UNIFORM_NAMES = UNIFORM + tuple(ALIASES)
#: Every name a per-layer flag accepts (`--write_policy`, `predict_latency.py --precision`).
LAYER_NAMES = LAYER + ("int8", "int16x8")

_TO_LAYER = {"int8": "a8w8", "a8w8": "a8w8", "a16w8": "a16w8", "int16x8": "a16w8", "float": "float"}


class PrecisionError(UserInputError):
    """A precision name nobody defines (one line listing the accepted names)."""


def uniform(name: str, *, allowed: tuple[str, ...] = UNIFORM) -> str:
    """The canonical whole-model name of `name` (`a8w8` -> `int8`, `int16x8` -> `a16w8`)."""
    key = str(name).strip().lower()
    canon = ALIASES.get(key, key)
    if canon not in allowed:
        names = [n for n in UNIFORM_NAMES if ALIASES.get(n, n) in allowed]
        raise PrecisionError(f"unknown precision '{name}'; use one of {', '.join(names)}")
    return canon


def layer(name: str) -> str:
    """The canonical per-layer name of `name` (`int8` -> `a8w8`, `int16x8` -> `a16w8`)."""
    key = str(name).strip().lower()
    if key not in _TO_LAYER:
        raise PrecisionError(f"unknown precision '{name}'; use one of {', '.join(LAYER_NAMES)}")
    return _TO_LAYER[key]
