"""Where the Keras model comes from: the zoo (name + scale + weights) or a user's saved model.

Every command takes either; a `ModelSource` carries the model with its scale and I/O
convention so conversion, calibration, evaluation and policies treat both the same way.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import models
from deploy.data.io_convention import IOConvention
from deploy.convert.user_model import fix_input_shape, load_keras_model
from models._keras import keras


@dataclasses.dataclass(frozen=True)
class ModelSource:
    name: str  # zoo name, or the user model's file stem
    scale: int
    model: keras.Model  # float, any input size
    convention: IOConvention
    zoo: bool
    weights: Optional[str]  # label of the weights used

    def fixed(self, hw: tuple[int, int]) -> keras.Model:
        if self.zoo:
            return models.with_fixed_shape(self.model, self.name, self.scale, hw)
        return fix_input_shape(self.model, hw)

    def to_json(self) -> dict:
        return {"model": self.name, "scale": self.scale, "weights": self.weights,
                "io_convention": dataclasses.asdict(self.convention), "source": "zoo" if self.zoo else "keras_model"}


def resolve(model: Optional[str], scale: int, *, keras_model: Optional[str] = None,
            weights: bool | str = True, channels: str = "rgb", value_range: str = "0-1",
            unsafe_deserialization: bool = False) -> ModelSource:
    """A zoo model (`model`) or a saved tf_keras model (`keras_model`), never both."""
    if keras_model:
        from pathlib import Path
        m = load_keras_model(keras_model, unsafe_deserialization=unsafe_deserialization)
        conv = IOConvention(channels, value_range)
        if m.input_shape[-1] != conv.n_channels:
            raise models.ModelError(f"{keras_model} takes {m.input_shape[-1]} channel(s) but --channels "
                                    f"{channels} means {conv.n_channels}; pass the right --channels")
        return ModelSource(Path(keras_model).stem, scale, m, conv, False, str(keras_model))
    name = models.spec(model or "").name
    m = models.build(name, scale, weights=weights)
    label = (models.weights_path(name, scale).name if weights is True else str(weights) if weights else None)
    return ModelSource(name, scale, m, IOConvention(), True, label)


def load_model(model: str, scale: Optional[int] = None, *, weights: bool | str = True,
               channels: str = "rgb", value_range: str = "0-1") -> ModelSource:
    """A zoo model by name, or a user's saved model by path, with its I/O convention.

    Args:
        model: a zoo name (`xlsr`, `fsrcnn`, ...) or a path to a .h5/.keras/SavedModel.
        scale: the upscaling factor (required for a user's model; zoo default 3).
        weights: zoo only: True = the shipped, hash-checked weights; a .h5 path; False = untrained.
        channels: a user's model's input/output channels, `rgb` or `y`.
        value_range: a user's model's value range, `0-1` or `0-255`.
    Returns:
        A `ModelSource` every other API call takes.
    Raises:
        models.ModelError: an unknown zoo name or scale, or weights that fail their hash.
        deploy.errors.UserInputError: a user's model without a scale, or with other channels.
    """
    from pathlib import Path
    from deploy.errors import UserInputError
    looks_like_path = Path(model).suffix.lower() in (".h5", ".keras", ".hdf5") or Path(model).exists()
    if looks_like_path:
        if scale is None:
            raise UserInputError(f"{model}: pass the model's upscaling factor (scale=...)")
        return resolve(None, int(scale), keras_model=str(model), channels=channels, value_range=value_range)
    return resolve(model, int(scale or 3), weights=weights)
