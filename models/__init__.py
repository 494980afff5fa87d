"""srdeploy's Keras SR model zoo (tf_keras), behind one registry.

Imported lazily: `import models` (or `models.errors`) loads no TensorFlow until a registry name
is used, so the error tree (`models.errors`) can sit under `deploy.errors`.
"""
from __future__ import annotations

import importlib
from typing import Any

from models.errors import ModelError

_REGISTRY = ("GRAPH_ONLY", "MODELS", "available_weights", "build", "recipe_path", "spec", "verify_weights",
             "weights_path", "with_fixed_shape")

_SUBMODULES = ("registry", "complexity", "layers", "zoo", "zoo_aihub", "zoo_big", "_keras")

__all__ = sorted([*_REGISTRY, "ModelError"])


def __getattr__(name: str) -> Any:
    if name in _REGISTRY:
        value = getattr(importlib.import_module("models.registry"), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    if name in _SUBMODULES:  # `import models; models.registry...` as before the lazy import
        return importlib.import_module(f"models.{name}")
    raise AttributeError(f"module 'models' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_REGISTRY])
