"""The AI Hub SR models: faithful to the architectures AI Hub measured (parameter counts at x4 equal
its info.yaml, quic/ai-hub-models @ 52c080d245d2d20c634459208ff2548ce10b3c9f), and honest about
the scales they ship no weights for (trained here at x4 only)."""
import numpy as np
import pytest

import models
from models import zoo_aihub

# qai_hub_models/models/<id>/info.yaml "Number of parameters" (x4 graphs, 128x128)
AIHUB_PARAMS = {"xlsr": (28016, 28.0e3), "quicksrnetsmall": (33264, 33.3e3), "quicksrnetmedium": (61008, 61.0e3),
                "quicksrnetlarge": (435888, 436e3), "sesr_m5": (342928, 343e3),
                "real_esrgan_general_x4v3": (1213296, 1.21e6)}


@pytest.mark.parametrize("name", sorted(AIHUB_PARAMS))
def test_parameter_count_is_ai_hubs(name):
    exact, published = AIHUB_PARAMS[name]
    n = zoo_aihub.AIHUB_GRAPHS[name](4).count_params()
    assert n == exact
    assert abs(n - published) / published < 0.005


def test_sesr_collapsed_is_the_small_inference_form():
    assert models.build("sesr_m5", 4).count_params() == 32064  # 5x5 3->16, 5 x 3x3 16->16, 5x5 16->48


def test_quicksrnet_large_anchor_starts_as_nearest_upsampling():
    m = models.build("quicksrnet_large", 4, input_shape=(8, 8))
    x = np.random.default_rng(0).random((1, 8, 8, 3)).astype(np.float32)
    sub = type(m)(m.input, m.get_layer("anchor").output)
    y = models.layers.pixel_shuffle(sub(x), 4).numpy()
    np.testing.assert_allclose(y, np.repeat(np.repeat(x, 4, 1), 4, 2), atol=1e-6)


def test_sesr_starts_as_nearest_upsampling():
    """conv_last starts at zero (models/zoo_aihub.py sesr: PyTorch's init there let training kill
    conv_first's ReLUs and stay at nearest upsampling for good)."""
    m = models.build("sesr_m5", 4, input_shape=(8, 8))
    x = np.random.default_rng(0).random((1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(m(x).numpy(), np.repeat(np.repeat(x, 4, 1), 4, 2), atol=1e-6)


def test_realesrgan_starts_as_nearest_with_a_live_body():
    """conv_last starts at zero and the body is He-initialised for its PReLUs: PyTorch's default
    init shrinks the signal ~5x per layer, so after 33 layers the body was silent and training
    stayed at nearest upsampling (models/zoo_aihub.py TorchConvInit "he_prelu")."""
    m = models.build("realesrgan_general_x4v3", 4, input_shape=(16, 16))
    x = np.random.default_rng(0).random((1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(m(x).numpy(), np.repeat(np.repeat(x, 4, 1), 4, 2), atol=1e-6)
    first, last = (type(m)(m.input, m.get_layer(n).output)(x).numpy() for n in ("conv1_prelu", "body32_prelu"))
    assert np.std(last) > 0.1 * np.std(first)


@pytest.mark.parametrize("name", ["quicksrnet_small", "quicksrnet_medium", "quicksrnet_large", "sesr_m5",
                                  "realesrgan_general_x4v3"])
def test_registered_rgb_in_out(name):
    m = models.build(name, 4, input_shape=(16, 16))
    assert m.output_shape == (1, 64, 64, 3)


def test_models_without_weights_say_so():
    shipped = set(models.available_weights())
    for name in ("quicksrnet_small", "quicksrnet_medium", "quicksrnet_large", "sesr_m5", "realesrgan_general_x4v3"):
        for s in models.spec(name).scales:
            if (name, s) not in shipped:
                assert s not in models.spec(name).shipped_scales  # the registry does not promise them
                with pytest.raises(models.ModelError, match="no shipped weights"):
                    models.build(name, s, weights=True)
