import numpy as np
import pytest

import models
from models._keras import tf
from models.layers import PixelShuffle


@pytest.mark.parametrize("name", sorted(models.MODELS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shape_any_size(name, scale):
    model = models.build(name, scale)
    y = model(np.random.default_rng(0).random((1, 13, 17, 3), np.float32))
    assert y.shape == (1, 13 * scale, 17 * scale, 3)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_fixed_shape_copy_gives_same_output(name):
    model = models.build(name, 3)
    fixed = models.with_fixed_shape(model, name, 3, (16, 16))
    assert fixed.input_shape == (1, 16, 16, 3)
    x = np.random.default_rng(1).random((1, 16, 16, 3), np.float32)
    np.testing.assert_allclose(fixed(x).numpy(), model(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pixel_shuffle_matches_depth_to_space(scale):
    x = np.random.default_rng(2).random((2, 5, 7, 3 * scale * scale), np.float32)
    np.testing.assert_array_equal(PixelShuffle(scale)(x).numpy(), tf.nn.depth_to_space(x, scale).numpy())


def test_paper_sizes():
    """Parameter counts the papers state: XLSR ~22k, EDSR-baseline ~1.5M (x4)."""
    assert 20_000 < models.build("xlsr", 3).count_params() < 23_000
    assert 1.45e6 < models.build("edsr_baseline", 4).count_params() < 1.6e6
    fsrcnn = models.build("fsrcnn", 3)
    assert sum(isinstance(l, tf.keras.layers.Layer) and "prelu" in l.name for l in fsrcnn.layers) == 7


def test_unknown_model_and_scale():
    with pytest.raises(models.ModelError, match="known models: abpn"):
        models.build("srcnn", 3)
    with pytest.raises(models.ModelError, match="supported scales"):
        models.build("xlsr", 8)


def test_weights_hash_is_checked(tmp_path):
    model = models.build("espcn", 2)
    path = tmp_path / "espcn_x2-deadbeef.h5"
    model.save_weights(str(path))
    with pytest.raises(models.ModelError, match="corrupt or replaced"):
        models.build("espcn", 2, weights=path)
    good = tmp_path / f"espcn_x2-{models.registry.file_sha256(path)[:8]}.h5"
    path.rename(good)
    assert models.build("espcn", 2, weights=good).count_params() == model.count_params()


@pytest.mark.parametrize("name,scale", models.available_weights())
def test_shipped_weights_load_and_run(name, scale):
    model = models.build(name, scale, weights=True)
    y = model(np.full((1, 12, 12, 3), 0.5, np.float32)).numpy()
    assert y.shape == (1, 12 * scale, 12 * scale, 3)
    assert abs(float(y.mean()) - 0.5) < 0.05  # a trained SR net keeps flat grey grey


@pytest.mark.slow
@pytest.mark.parametrize("name,scale", models.available_weights())
def test_shipped_weights_beat_bicubic_by_half_a_db(name, scale):
    """The zoo's promise (models/README.md): every shipped weight is >= 0.5 dB over bicubic."""
    from deploy.data import images as data
    from deploy.evaluation.evaluator import evaluate
    from deploy.evaluation.runners import KerasRunner
    r = evaluate(KerasRunner(models.build(name, scale, weights=True), scale), data.eval_samples(scale),
                 model=name, dataset="default", progress=False)
    assert r.mean["psnr_y"] >= r.bicubic["psnr_y"] + 0.5, (r.mean, r.bicubic)


def test_every_model_ships_weights_at_every_scale():
    """The zoo's promise: all 18 model x scale pairs, one weight file each, with its recipe beside it."""
    wanted = {(n, s) for n, spec in models.MODELS.items() for s in spec.scales}
    shipped = models.available_weights()
    assert sorted(shipped) == sorted(wanted)  # a stale second file of one pair would show twice
    for name, scale in shipped:
        assert models.recipe_path(name, scale).is_file()
