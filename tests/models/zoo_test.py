import numpy as np
import pytest

import models
from models import zoo
from models._keras import keras, tf
from models.layers import PixelShuffle, SubPixelConv2DTranspose, subpixel_plan, subpixel_weights


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
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_pixel_shuffle_matches_depth_to_space(scale, batch):
    """Bit-exact for any batch: eager, and in models with dynamic or fixed batch and size."""
    x = np.random.default_rng(2).random((batch, 5, 7, 3 * scale * scale), np.float32)
    want = tf.nn.depth_to_space(x, scale).numpy()
    np.testing.assert_array_equal(PixelShuffle(scale)(x).numpy(), want)
    for shape, b in [((None, None, x.shape[-1]), None), (x.shape[1:], None), (x.shape[1:], batch)]:
        inp = keras.Input(shape, batch_size=b)
        model = keras.Model(inp, PixelShuffle(scale)(inp))
        np.testing.assert_array_equal(model(x).numpy(), want)
        np.testing.assert_array_equal(model.predict(x, batch_size=batch, verbose=0), want)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pixel_shuffle_tflite_is_rank4_and_exact(scale):
    """Fixed batch-1 export: RESHAPE/TRANSPOSE of rank <= 4 only (HTP rejects rank 6), and
    LiteRT's float result equals depth_to_space bit for bit."""
    from deploy.convert.tflite_io import make_interpreter
    inp = keras.Input((6, 5, 2 * scale * scale), batch_size=1)
    tfl = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, PixelShuffle(scale)(inp))).convert()
    interp = make_interpreter(tfl, delegates=False)
    ops = interp._get_ops_details()  # noqa: SLF001 - the op list is only exposed here
    assert sorted({o["op_name"] for o in ops}) == ["RESHAPE", "TRANSPOSE"]
    shapes = {t["index"]: t["shape"] for t in interp.get_tensor_details()}
    assert max(len(shapes[i]) for o in ops for i in list(o["inputs"]) + list(o["outputs"])) <= 4
    x = np.random.default_rng(3).random((1, 6, 5, 2 * scale * scale), np.float32)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    got = interp.get_tensor(interp.get_output_details()[0]["index"])
    np.testing.assert_array_equal(got, tf.nn.depth_to_space(x, scale).numpy())


def _deconv_pair(filters, k, r, cin, seed=0):
    inp = keras.Input((None, None, cin))
    ref = keras.layers.Conv2DTranspose(filters, k, strides=r, padding="same")
    sub = SubPixelConv2DTranspose(filters, k, strides=r, padding="same")
    m_ref, m_sub = keras.Model(inp, ref(inp)), keras.Model(inp, sub(inp))
    rng = np.random.default_rng(seed)
    ref.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in ref.get_weights()])
    sub.set_weights(ref.get_weights())
    return m_ref, m_sub


@pytest.mark.parametrize("r", [2, 3, 4])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8, 9])
def test_subpixel_deconvolution_equals_conv2d_transpose(k, r):
    """Every kernel size vs stride (even, odd, k < r): same output size, same values at the
    borders (TF's "same" padding/cropping of the transpose), any batch and odd sizes."""
    m_ref, m_sub = _deconv_pair(3, k, r, 5)
    x = np.random.default_rng(4).standard_normal((2, 7, 5, 5)).astype(np.float32)
    want, got = m_ref(x).numpy(), m_sub(x).numpy()
    assert got.shape == want.shape == (2, 7 * r, 5 * r, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_subpixel_plan_of_fsrcnn_deconvolutions():
    """9x9 deconv -> 5x5 conv at x2, 3x3 at x3 and x4, centred (SAME pads, no PAD op); at x3 the
    nine 3x3 phase kernels use each 9x9 tap exactly once."""
    assert [subpixel_plan(9, r)[1:] for r in (2, 3, 4)] == [(2, 2), (1, 1), (1, 1)]
    taps, _, _ = subpixel_plan(9, 3)
    assert sorted(taps.ravel().tolist()) == list(range(9))
    kernel = np.arange(9 * 9 * 3 * 56, dtype=np.float32).reshape(9, 9, 3, 56)
    w, b = subpixel_weights(kernel, np.arange(3, dtype=np.float32), 3)
    assert w.shape == (3, 3, 56, 27) and sorted(w.ravel().tolist()) == sorted(kernel.ravel().tolist())
    assert b.tolist() == [0, 1, 2] * 9


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_subpixel_equals_shipped_deconvolution(scale):
    """The shipped .h5 (deconvolution layout) loads unchanged; the sub-pixel model's output
    equals the Conv2DTranspose model's on the shipped weights, borders included; the numpy
    weight conversion gives the same kernel as the layer's in-graph gather."""
    path = models.weights_path("fsrcnn", scale)
    model = models.build("fsrcnn", scale, weights=True)
    ref = zoo.fsrcnn(scale, subpixel=False)
    ref.load_weights(str(path))
    assert isinstance(model.get_layer("deconv"), SubPixelConv2DTranspose)
    assert type(ref.get_layer("deconv")) is keras.layers.Conv2DTranspose
    assert model.count_params() == ref.count_params() == 24_683
    x = np.random.default_rng(5).random((2, 19, 14, 3), np.float32)
    np.testing.assert_allclose(model(x).numpy(), ref(x).numpy(), atol=1e-5)

    kernel, bias = model.get_layer("deconv").get_weights()
    w, b = subpixel_weights(kernel, bias, scale)
    feat = keras.Model(model.input, model.get_layer("expand_prelu").output)(x)
    pad = subpixel_plan(9, scale)[1]
    y = tf.nn.conv2d(feat, w, 1, "SAME") + b
    assert w.shape[0] == 2 * pad + 1
    np.testing.assert_allclose(tf.nn.depth_to_space(y, scale).numpy(), ref(x).numpy(), atol=1e-5)


def test_fsrcnn_tflite_has_subpixel_conv_not_transpose_conv():
    """The converter folds the weight gather: one CONV_2D (3*r*r outputs) + rank-4 shuffle."""
    from deploy.convert.tflite_io import make_interpreter, summarize
    from deploy.convert.uniform import convert_uniform
    model = models.with_fixed_shape(models.build("fsrcnn", 3, weights=True), "fsrcnn", 3, (16, 16))
    tfl = convert_uniform(model, "float").tflite
    interp = make_interpreter(tfl, delegates=False)
    counts = summarize(interp).op_counts()
    assert "TRANSPOSE_CONV" not in counts and "GATHER" not in counts and "DEPTH_TO_SPACE" not in counts
    assert counts["CONV_2D"] == 8 and counts["TRANSPOSE"] == 1
    x = np.random.default_rng(6).random((1, 16, 16, 3), np.float32)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    ref = zoo.fsrcnn(3, subpixel=False)
    ref.load_weights(str(models.weights_path("fsrcnn", 3)))
    np.testing.assert_allclose(interp.get_tensor(interp.get_output_details()[0]["index"]), ref(x).numpy(),
                               atol=1e-5)


def test_fsrcnn_checkpoints_and_weight_files_interchange_with_the_deconvolution(tmp_path):
    """Same variables as the paper's Conv2DTranspose model: a training checkpoint made before
    the sub-pixel form restores into it (tools/train.py resumes), and weights it saves load into
    the plain deconvolution model unchanged."""
    old = zoo.fsrcnn(2, subpixel=False)
    old.load_weights(str(models.weights_path("fsrcnn", 2)))
    tf.train.Checkpoint(model=old).write(str(tmp_path / "ckpt"))
    new = models.build("fsrcnn", 2)
    tf.train.Checkpoint(model=new).read(str(tmp_path / "ckpt")).assert_consumed()
    for a, b in zip(new.get_weights(), old.get_weights()):
        np.testing.assert_array_equal(a, b)
    new.save_weights(str(tmp_path / "new.h5"))
    back = zoo.fsrcnn(2, subpixel=False)
    back.load_weights(str(tmp_path / "new.h5"))
    x = np.random.default_rng(7).random((1, 9, 11, 3), np.float32)
    np.testing.assert_allclose(new(x).numpy(), back(x).numpy(), atol=1e-5)


def test_paper_sizes():
    """Parameter counts the papers state: XLSR ~22k, EDSR-baseline ~1.5M (x4)."""
    assert 20_000 < models.build("xlsr", 3).count_params() < 23_000
    assert 1.45e6 < models.build("edsr_baseline", 4).count_params() < 1.6e6
    fsrcnn = models.build("fsrcnn", 3)
    assert sum(isinstance(l, keras.layers.Layer) and "prelu" in l.name for l in fsrcnn.layers) == 7


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
    from deploy.data import images
    from deploy.evaluation.evaluator import evaluate
    from deploy.evaluation.runners import KerasRunner
    r = evaluate(KerasRunner(models.build(name, scale, weights=True), scale), images.eval_samples(scale),
                 model=name, dataset="default", progress=False)
    assert r.mean["psnr_y"] >= r.bicubic["psnr_y"] + 0.5, (r.mean, r.bicubic)


def test_every_model_ships_weights_at_every_scale():
    """The zoo's promise: every model x scale pair the registry declares shipped (all scales of the
    first six; the AI Hub models where trained), one weight file each, with its recipe beside it."""
    wanted = {(n, s) for n, spec in models.MODELS.items() for s in spec.shipped_scales}
    shipped = models.available_weights()
    assert sorted(shipped) == sorted(wanted)  # a stale second file of one pair would show twice
    for name, scale in shipped:
        assert models.recipe_path(name, scale).is_file()
