"""Where the Keras model comes from: the zoo (name + scale + weights) or a user's saved model.

Every command takes either; a `ModelSource` carries the model with its scale and I/O
convention so conversion, calibration, evaluation and policies treat both the same way.
"""
from __future__ import annotations

import dataclasses
import weakref
from typing import Any, Optional

import models
from deploy.data.io_convention import IOConvention
from deploy.errors import UserInputError
from deploy.convert.user_model import fix_input_shape, load_user_model
from models._keras import keras


class ModelLoadError(UserInputError, models.ModelError):
    """A model that cannot be loaded (unknown zoo name or scale, bad weights): a SrdeployError
    like every library error, and still a models.ModelError for code that caught that."""


@dataclasses.dataclass(frozen=True, repr=False)
class ModelSource:
    """A float SR model to quantize, evaluate or search, with what it takes to do so: its
    scale and I/O convention (channels, value range), where it came from (the zoo with hashed
    weights, a user's Keras file, a SavedModel or a float TFLite), and the model itself.

    Make one with `deploy.load_model(name_or_path, scale)`; every other API call takes it.
    `to_json()` is how results record it."""
    name: str  # zoo name, or the user model's file stem
    scale: int
    model: Any  # float, any input size: tf_keras (zoo, tf_keras files) or Keras 3; None otherwise
    convention: IOConvention
    zoo: bool
    weights: Optional[str]  # label of the weights used (a user's model: its path)
    #: "tf_keras" (zoo, tf_keras files), "keras3", "saved_model" (exported), "tflite" (float TFLite)
    framework: str = "tf_keras"
    tflite: Optional[bytes] = None  # framework "tflite": the float model, at its own fixed size

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        return brief_repr(self, name=self.name, scale=self.scale, framework=self.framework, zoo=self.zoo,
                          weights=self.weights, convention=self.convention)

    @property
    def graph_route(self) -> bool:
        """True when per-layer work runs on the float TFLite's graph (not a tf_keras model)."""
        return self.framework != "tf_keras"

    def fixed(self, hw: tuple[int, int]) -> keras.Model:
        if self.graph_route:
            raise UserInputError(f"{self.name} is a {FRAMEWORK_LABEL[self.framework]}, not a tf_keras "
                                 "model; this step needs tf_keras (policy-aware QAT: see README 'Your own model')")
        if self.zoo:
            return models.with_fixed_shape(self.model, self.name, self.scale, hw)
        return fix_input_shape(self.model, hw)

    def float_tflite(self, hw: Optional[tuple[int, int]]):
        """(float TFLite bytes at a fixed input size, assign) for graph-route sources; `assign`
        maps tensor names to Keras 3 layer names (None: op groups named from the graph).
        A float TFLite keeps the size it was exported at (`hw` is not applied)."""
        from deploy.convert import graph_source as gs
        if self.framework == "tflite":
            return self.tflite, None
        if hw is None:
            raise UserInputError(f"{self.name}: converting a {FRAMEWORK_LABEL[self.framework]} needs a fixed "
                                 "input size (e.g. --input_size 64x64)")
        if self.framework == "keras3":  # exported once per model and size (each export takes seconds)
            per_model = _KERAS3_EXPORTS.setdefault(self.model, {})
            if tuple(hw) not in per_model:
                per_model[tuple(hw)] = gs.keras3_float_tflite(self.model, hw)
            data, assign = per_model[tuple(hw)]
        elif self.framework == "saved_model":
            data, assign = gs.saved_model_float_tflite(self.weights, hw, self.convention.n_channels), None
        else:
            raise UserInputError(f"{self.name} is a tf_keras model: use per_layer.prepare")
        gs.check_float_tflite(data, self.name, self.scale, self.convention.n_channels)
        return data, assign

    def to_json(self) -> dict:
        kind = "zoo" if self.zoo else {"tflite": "float_tflite"}.get(self.framework, "keras_model")
        return {"model": self.name, "scale": self.scale, "weights": self.weights,
                "io_convention": dataclasses.asdict(self.convention), "source": kind,
                **({"framework": self.framework} if self.graph_route else {})}


def require_source(value: Any, what: str = "source") -> Any:
    """`value` must be a ModelSource (from deploy.load_model)."""
    if not isinstance(value, ModelSource):
        raise UserInputError(f"{what} must be a model from deploy.load_model(...), not "
                             f"{type(value).__name__}")
    return value


_KERAS3_EXPORTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

FRAMEWORK_LABEL = {"tf_keras": "tf_keras model", "keras3": "Keras 3 model", "saved_model": "SavedModel",
                   "tflite": "float TFLite model"}


def resolve(model: Optional[str], scale: int, *, keras_model: Optional[str] = None,
            weights: bool | str = True, channels: str = "rgb", value_range: str = "0-1",
            unsafe_deserialization: bool = False, float_tflite: Optional[str] = None,
            custom_objects: Optional[str] = None) -> ModelSource:
    """A zoo model (`model`), a user's saved Keras model (`keras_model`: tf_keras or Keras 3,
    .h5/.keras/SavedModel) or a float TFLite from any framework (`float_tflite`)."""
    from pathlib import Path
    if keras_model and float_tflite:
        raise UserInputError("pass --keras_model or --float_tflite, not both")
    conv = IOConvention(channels, value_range)
    if float_tflite:
        from deploy.convert import graph_source as gs
        data = gs.read_float_tflite(float_tflite)
        gs.check_float_tflite(data, str(float_tflite), scale, conv.n_channels)
        return ModelSource(Path(float_tflite).stem, scale, None, conv, False, str(float_tflite), "tflite", data)
    if keras_model:
        framework, m = load_user_model(keras_model, unsafe_deserialization=unsafe_deserialization,
                                       custom_objects=custom_objects)
        if m is not None and m.input_shape[-1] != conv.n_channels:
            raise models.ModelError(f"{keras_model} takes {m.input_shape[-1]} channel(s) but channels "
                                    f"'{channels}' means {conv.n_channels}; pass the right channels",
                                    option="channels", file=keras_model, value=channels)
        return ModelSource(Path(keras_model).stem, scale, m, conv, False, str(keras_model), framework)
    name = models.spec(model or "").name
    m = models.build(name, scale, weights=weights)
    label = (models.weights_path(name, scale).name if weights is True else str(weights) if weights else None)
    return ModelSource(name, scale, m, IOConvention(), True, label)


def load_model(model: str, scale: Optional[int] = None, *, weights: bool | str = True,
               channels: str = "rgb", value_range: str = "0-1", custom_objects: Optional[str] = None,
               unsafe_deserialization: bool = False) -> ModelSource:
    """A zoo model by name, or a user's saved model by path, with its I/O convention.

    Args:
        model: a zoo name (`xlsr`, `fsrcnn`, ...) or a path to a .h5/.keras/SavedModel (tf_keras
            or Keras 3) or to a float .tflite from any framework.
        scale: the upscaling factor (required for a user's model; zoo default 3).
        weights: zoo only: True = the shipped, hash-checked weights; a .h5 path; False = untrained.
        channels: a user's model's input/output channels, `rgb` or `y`.
        value_range: a user's model's value range, `0-1` or `0-255`.
        custom_objects: a Keras 3 model's custom layers: a .py file or module whose import
            registers them (`@keras.saving.register_keras_serializable()`).
        unsafe_deserialization: allow Lambda layers (their code runs on load).
    Returns:
        A `ModelSource` every other API call takes.
    Raises:
        ModelLoadError: an unknown zoo name or scale, or weights that fail their hash (a
            deploy.errors.SrdeployError and a models.ModelError).
        deploy.errors.UserInputError: a user's model without a scale, or with other channels.
    """
    try:
        return _load_model(model, scale, weights=weights, channels=channels, value_range=value_range,
                           custom_objects=custom_objects, unsafe_deserialization=unsafe_deserialization)
    except models.ModelError as e:
        if isinstance(e, UserInputError):
            raise
        raise ModelLoadError(str(e)) from None


def _load_model(model, scale, *, weights, channels, value_range, custom_objects,
                unsafe_deserialization) -> ModelSource:
    from pathlib import Path
    from deploy.convert import graph_source as gs
    if not isinstance(model, (str, Path)):
        raise UserInputError(f"model must be a zoo name or a path, not {type(model).__name__}")
    if scale is not None:
        from deploy.convert import args
        scale = args.count("scale", scale)
    suffix = Path(model).suffix.lower()
    looks_like_path = suffix in (".h5", ".keras", ".hdf5", ".tflite") + gs.TORCH_SUFFIXES or Path(model).exists()
    if looks_like_path:
        gs.refuse_torch(model)
        if scale is None:
            raise UserInputError(f"{model}: pass the model's upscaling factor (scale=...)")
        if suffix == ".tflite":
            return resolve(None, int(scale), float_tflite=str(model), channels=channels, value_range=value_range,
                           custom_objects=custom_objects)
        return resolve(None, int(scale), keras_model=str(model), channels=channels, value_range=value_range,
                       custom_objects=custom_objects, unsafe_deserialization=unsafe_deserialization)
    return resolve(model, int(scale or 3), weights=weights)
