"""srdeploy's Keras SR model zoo (tf_keras), behind one registry."""
from models.registry import (GRAPH_ONLY, MODELS, ModelError, available_weights, build, recipe_path, spec,
                             verify_weights, weights_path, with_fixed_shape)

__all__ = ["GRAPH_ONLY", "MODELS", "ModelError", "available_weights", "build", "recipe_path", "spec", "verify_weights",
           "weights_path", "with_fixed_shape"]
