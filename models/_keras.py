"""The one place that imports Keras.

TF-MOT 0.8 only understands Keras 2 (tf_keras); Keras 3 models fail its type checks with a
confusing "Sequential or Functional" error. Importing through here guarantees every model in the
repo is a tf_keras model.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf", "require_tf_keras_model"]


def require_tf_keras_model(model: object) -> "keras.Model":
    """Return `model` if it is a tf_keras Model, else raise a TypeError naming the flavour."""
    if isinstance(model, keras.Model):
        return model
    kind = f"{type(model).__module__}.{type(model).__name__}"
    raise TypeError(
        f"expected a tf_keras (Keras 2) model, got {kind}; build it with `import tf_keras` "
        "(or set TF_USE_LEGACY_KERAS=1 before importing TensorFlow)")
