"""Users' own tf_keras SR models: load (.h5 / .keras / SavedModel) and fix the input size."""
from __future__ import annotations

from pathlib import Path

from deploy.convert import rewrite
from models._keras import keras, require_tf_keras_model
from models.layers import CUSTOM_OBJECTS
from models.registry import ModelError


def load_keras_model(path: str | Path, *, unsafe_deserialization: bool = False) -> keras.Model:
    """Load a saved tf_keras model; ModelError (one line) when it cannot be used.

    `.keras` files load in Keras' safe mode: a Lambda layer (arbitrary Python code, run on load)
    is refused unless `unsafe_deserialization` is set, which warns.
    """
    import warnings
    path = Path(path)
    if not path.exists():
        raise ModelError(f"Keras model {path} does not exist")
    objects = {**CUSTOM_OBJECTS, **rewrite.CUSTOM_OBJECTS}
    kwargs = {}
    if path.suffix == ".keras":
        kwargs = {"safe_mode": not unsafe_deserialization}
        if unsafe_deserialization:
            warnings.warn(f"loading {path} with safe_mode=False: its Lambda layers run arbitrary code; "
                          "only do this for files you trust", stacklevel=2)
    try:
        model = keras.models.load_model(str(path), custom_objects=objects, compile=False, **kwargs)
    except Exception as e:  # h5py, SavedModel and deserialisation raise many types; cause chained
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if "Lambda" in first and ("safe_mode" in first or "unsafe" in first):
            raise ModelError(f"{path} contains a Lambda layer (code that runs on load); pass "
                             "--unsafe_deserialization if you trust the file") from e
        if len(first) > 200:  # deserialisation errors quote the whole model config
            first = first[:200] + "..."
        raise ModelError(f"cannot load Keras model {path}: {first}; save it with tf_keras "
                         "(model.save('m.keras') or .h5)") from e
    model = require_tf_keras_model(model)
    shape = model.input_shape
    if not isinstance(shape, tuple) or len(shape) != 4:
        raise ModelError(f"{path}: expected one NHWC image input, got input shape {shape}")
    return model


def fix_input_shape(model: keras.Model, hw: tuple[int, int]) -> keras.Model:
    """Same layers and weights with a fixed (1, H, W, C) input: NPUs and int16 need it."""
    channels = model.input_shape[-1]
    inp = keras.Input(shape=(hw[0], hw[1], channels), batch_size=1, name=model.input_names[0])
    try:
        fixed = keras.models.clone_model(model, input_tensors=inp,
                                         clone_function=lambda l: l.__class__.from_config(l.get_config()))
    except (ValueError, TypeError) as e:
        raise ModelError(f"cannot give {model.name} a fixed input size: {str(e).splitlines()[0]}") from None
    fixed.set_weights(model.get_weights())
    return fixed
