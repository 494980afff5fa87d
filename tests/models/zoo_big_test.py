"""The latency/compile-only SR generators (models/zoo_big.py): AI Hub's architectures, no weights."""
import numpy as np
import pytest

import models
from models import zoo_big


@pytest.mark.parametrize("name,builder,published", [
    ("srgan", zoo_big.srgan, 1.55e6),        # qai-hub-models 0.65.0 srgan/manifest.yaml (BN folded away: -8.7K)
    ("rrdbnet", zoo_big.rrdbnet, 16.7e6),    # esrgan / real_esrgan_x4plus manifest.yaml
])
def test_parameter_counts_match_ai_hub(name, builder, published):
    n = models.build(name, 4).count_params()
    assert abs(n - published) / published < 0.005, n


@pytest.mark.parametrize("name", sorted(models.GRAPH_ONLY))
@pytest.mark.parametrize("scale", [2, 4])
def test_upscales_any_size(name, scale):
    y = models.build(name, scale)(np.zeros((1, 7, 9, 3), np.float32))
    assert y.shape == (1, 7 * scale, 9 * scale, 3)


def test_graph_only_models_are_outside_the_trained_zoo_and_have_no_weights():
    assert not set(models.GRAPH_ONLY) & set(models.MODELS)
    with pytest.raises(models.ModelError, match="no weights are shipped"):
        models.build("srgan", 4, weights=True)
    with pytest.raises(models.ModelError, match="x3"):
        models.build("rrdbnet", 3)


def test_rrdbnet_tiled_nearest_equals_the_resize_op():
    """The HTP-friendly nearest x2 (features tiled 4x + pixel shuffle) computes AI Hub's
    UpSampling2D exactly (same weights, small config so the test is quick)."""
    tiled = zoo_big.rrdbnet(4, blocks=1, feat=8, growth=4)
    resize = zoo_big.rrdbnet(4, blocks=1, feat=8, growth=4, nearest="resize")
    resize.set_weights(tiled.get_weights())
    x = np.random.default_rng(0).random((1, 6, 5, 3), np.float32)
    np.testing.assert_allclose(tiled(x).numpy(), resize(x).numpy(), rtol=0, atol=1e-6)
    assert not any("UpSampling" in type(l).__name__ for l in tiled.layers)
