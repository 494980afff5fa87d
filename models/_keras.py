"""The one place that imports Keras, and TensorFlow's start-up quieting.

Every model in the repo is a tf_keras (Keras 2) model: TF-MOT 0.8 only understands Keras 2
(Keras 3 models fail its type checks with a confusing "Sequential or Functional" error), so
`keras` here is `tf_keras`, imported directly.

Importing this module changes no environment variable (issue #30: a library must not change the
process it is imported into). `TF_USE_LEGACY_KERAS` is not needed: TensorFlow reads it only to
route `tf.keras` / `import tensorflow.keras` (tensorflow/__init__.py, util/lazy_loader.py), which
no library module uses; the TFLite converter picks its path from the model's type, not the
variable, so converted bytes are the same with or without it (bench/convert_hashes.py). Users'
Keras 3 models load through `import keras`, which the variable never affected. TF-MOT sets the
variable for the whole process when imported (its keras/compat.py): `import_tfmot` imports it
with the environment restored afterwards. `TF_CPP_MIN_LOG_LEVEL=2` (unless the user set it) is in
force only while TensorFlow loads.
"""
import contextlib
import os
from types import ModuleType
from typing import Iterator


@contextlib.contextmanager
def environ_restored(**defaults: str) -> Iterator[None]:
    """Set `defaults` where the user did not, and leave os.environ exactly as it was on exit
    (also undoing what imported code set meanwhile, e.g. TF-MOT's TF_USE_LEGACY_KERAS)."""
    saved = dict(os.environ)
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide native-library chatter (TensorFlow's CUDA-stub lines at import on CPU-only
    machines, LiteRT's "Created XNNPACK delegate" INFO line) written straight to fd 2.

    They bypass Python and absl logging, so TF_CPP_MIN_LOG_LEVEL cannot silence them; users
    should see our one-line messages, not these. Python exceptions still surface.
    Set SRDEPLOY_VERBOSE_IMPORT=1 to see them.
    """
    if os.environ.get("SRDEPLOY_VERBOSE_IMPORT"):
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with environ_restored(TF_CPP_MIN_LOG_LEVEL="2"), quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402
    from ai_edge_litert import interpreter as _litert  # noqa: E402,F401  (same native libs)
    tf.config.list_physical_devices()  # device probing logs its cuInit failure here

__all__ = ["keras", "tf", "environ_restored", "import_tfmot", "quiet_native_stderr", "require_tf_keras_model"]


def import_tfmot() -> ModuleType:
    """`tensorflow_model_optimization`, imported without its process-wide TF_USE_LEGACY_KERAS.

    TF-MOT binds its Keras once, at import (tf_keras whichever way `tf.keras` points), so
    restoring the variable afterwards changes nothing it does."""
    with environ_restored():
        import tensorflow_model_optimization as tfmot
    return tfmot


def require_tf_keras_model(model: object) -> "keras.Model":
    """Return `model` if it is a tf_keras Model, else raise ModelError naming the flavour."""
    if isinstance(model, keras.Model):
        return model
    kind = f"{type(model).__module__}.{type(model).__name__}"
    from models.errors import ModelError
    raise ModelError(
        f"expected a tf_keras (Keras 2) model, got {kind}; build it with `import tf_keras` "
        "(or set TF_USE_LEGACY_KERAS=1 before importing TensorFlow)")
