"""The zoo's one error type (models/ imports nothing from deploy/, so it has its own)."""
from __future__ import annotations


class ModelError(ValueError):
    """A model request that cannot be served (unknown name/scale, missing or bad weights, a
    model of the wrong Keras flavour)."""
