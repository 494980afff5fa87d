"""The one place that imports Keras.

TF-MOT 0.8 only understands Keras 2 (tf_keras); Keras 3 models fail its type checks with a
confusing "Sequential or Functional" error. Importing through here guarantees every model in the
repo is a tf_keras model.
"""
import contextlib
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


with quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402
    from ai_edge_litert import interpreter as _litert  # noqa: E402,F401  (same native libs)
    tf.config.list_physical_devices()  # device probing logs its cuInit failure here

__all__ = ["keras", "tf", "quiet_native_stderr", "require_tf_keras_model"]


def require_tf_keras_model(model: object) -> "keras.Model":
    """Return `model` if it is a tf_keras Model, else raise ModelError naming the flavour."""
    if isinstance(model, keras.Model):
        return model
    kind = f"{type(model).__module__}.{type(model).__name__}"
    from models.errors import ModelError
    raise ModelError(
        f"expected a tf_keras (Keras 2) model, got {kind}; build it with `import tf_keras` "
        "(or set TF_USE_LEGACY_KERAS=1 before importing TensorFlow)")
