"""Users' saved models load safely: no code runs on load unless the user says so."""
from __future__ import annotations

import warnings

import pytest

from deploy.convert.user_model import load_keras_model
from models.errors import ModelError
from models._keras import keras


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory):
    x_in = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(12, 3, padding="same")(x_in)
    x = keras.layers.Lambda(lambda t: t * 1.0, name="scale_by_one")(x)
    path = tmp_path_factory.mktemp("um") / "lam.keras"
    keras.Model(x_in, x).save(str(path))
    return path


def test_a_lambda_layer_is_refused_in_safe_mode_by_default(lambda_model):
    with pytest.raises(ModelError, match="Lambda layer.*--unsafe_deserialization") as e:
        load_keras_model(lambda_model)
    assert "\n" not in str(e.value) and len(str(e.value)) < 300
    assert e.value.__cause__ is not None  # the cause stays chained, not hidden


def test_unsafe_deserialization_loads_it_with_a_warning(lambda_model):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_keras_model(lambda_model, unsafe_deserialization=True)
    assert model.layers[-1].name == "scale_by_one"
    assert any("arbitrary code" in str(w.message) for w in caught)
