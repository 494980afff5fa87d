"""Users' own SR models: tf_keras (.h5 / .keras / SavedModel), Keras 3 (.keras) and exported
SavedModels (`load_user_model`); fixing a tf_keras model's input size."""
from __future__ import annotations

from pathlib import Path

from deploy.convert import rewrite
from models._keras import keras, require_tf_keras_model
from models.layers import CUSTOM_OBJECTS
from deploy.errors import ModelError


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


def load_user_model(path: str | Path, *, unsafe_deserialization: bool = False,
                    custom_objects: str | None = None) -> tuple[str, object]:
    """(framework, model) of a user's saved model: ("tf_keras", model), ("keras3", model) or
    ("saved_model", None) for a SavedModel without Keras metadata (e.g. Keras 3 `model.export()`).
    One line (ModelError / ForeignModelError) when it cannot be used."""
    import warnings

    from deploy.convert import graph_source as gs
    path = Path(path)
    gs.refuse_torch(path)
    if not path.exists():
        raise ModelError(f"Keras model {path} does not exist")
    if path.suffix.lower() == ".tflite":
        raise ModelError(f"{path} is a TFLite model; pass it with --float_tflite (Python: "
                         "deploy.load_model(path, scale=...))")
    if path.is_dir() and not any((path / f).is_file() for f in ("saved_model.pb", "saved_model.pbtxt")):
        raise ModelError(f"{path} is a folder but not a SavedModel (no saved_model.pb in it); pass a .keras/.h5 "
                         "file or the folder model.export() / tf.saved_model.save() wrote")
    if path.is_dir() and not gs.is_keras_saved_model(path):
        return "saved_model", None
    version = gs.keras_version_of(path) if path.suffix == ".keras" else None
    if not (version or "").startswith("3"):
        gs.import_custom_objects(custom_objects)
        return "tf_keras", load_keras_model(path, unsafe_deserialization=unsafe_deserialization)
    import keras as keras3  # Keras 3: a separate package from tf_keras
    gs.import_custom_objects(custom_objects)
    gs.check_keras_file(path, unsafe_deserialization)
    if unsafe_deserialization:
        warnings.warn(f"loading {path} with safe_mode=False: its Lambda layers run arbitrary code; "
                      "only do this for files you trust", stacklevel=2)
    try:
        model = keras3.saving.load_model(str(path), compile=False, safe_mode=not unsafe_deserialization)
    except Exception as e:  # deserialisation raises many types; cause chained
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        first = first if len(first) <= 200 else first[:200] + "..."
        raise ModelError(f"cannot load Keras 3 model {path}: {first}") from e
    gs.check_keras3_io(model, str(path))
    return "keras3", model


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
