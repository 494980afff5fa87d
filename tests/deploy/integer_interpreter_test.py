"""The integer interpreter (deploy/evaluation/integer_interpreter.py) computes what LiteRT computes:
every op's output of an a16w8 model identical to LiteRT's own (all tensors preserved), whole
images identical through the tiled runner, and what it does not implement refused up front."""
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import models
from deploy.convert import uniform
from deploy.data import calibration
from deploy.evaluation import integer_kernels as ik
from deploy.evaluation.integer_interpreter import IntegerInterpreter, IntegerModelUnsupported
from deploy.evaluation.runners import TFLiteRunner, tile_cores
from models._keras import keras
from models.layers import ChannelSlice, PixelShuffle

HW = (24, 24)


def _every_op_model() -> keras.Model:
    """Conv (fused ReLU), conv, PReLU (RELU / MUL / SUB after the rewrite), residual ADD, clipped ReLU,
    LeakyReLU, tanh, a channel split (STRIDED_SLICE) concatenated with tensors of other ranges (int16
    requantizes), the input repeated by CONCATENATION and added (Real-ESRGAN-General's skip), pixel
    shuffle."""
    keras.utils.set_random_seed(7)
    inp = keras.Input((*HW, 3))
    c1 = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    c2 = keras.layers.Conv2D(8, 3, padding="same")(c1)
    p = keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.RandomUniform(-0.3, 1.2))(c2)
    a = keras.layers.ReLU(max_value=1.0)(keras.layers.Add()([c1, p]))
    leaky = keras.layers.LeakyReLU(0.1)(keras.layers.Conv2D(8, 3, padding="same")(a))
    th = keras.layers.Conv2D(4, 3, padding="same", activation="tanh")(c1)
    split = keras.layers.Concatenate()([ChannelSlice(0, 4)(leaky), ChannelSlice(4, 8)(c2), th])
    c3 = keras.layers.Conv2D(12, 3, padding="same")(split)
    skip = keras.layers.Concatenate()([inp] * 4)
    return keras.Model(inp, PixelShuffle(2)(keras.layers.Add()([c3, skip])))


@pytest.fixture(scope="module")
def a16w8() -> bytes:
    cal = calibration.calibration_set(2, HW, n_images=2, patches_per_image=2)
    return uniform.convert_uniform(_every_op_model(), "a16w8", calib=cal).tflite


def _litert_tensors(tflite: bytes, x: np.ndarray) -> Interpreter:
    ref = Interpreter(model_content=tflite, experimental_preserve_all_tensors=True, num_threads=1)
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    return ref


def _inputs() -> np.ndarray:
    """Real-photo tiles (the calibration photos' neighbours) and random ones, in [0, 1]."""
    cal = calibration.calibration_set(2, HW, n_images=3, patches_per_image=2, seed=5)
    rand = np.random.default_rng(0).random((2, *HW, 3), np.float32)
    return np.concatenate([np.asarray(cal.patches, np.float32)[:4], rand])


def test_every_op_matches_litert(a16w8):
    ii = IntegerInterpreter(a16w8)
    kinds = {k for k, _ in ii.ops}
    assert {"QUANTIZE", "CONV_2D", "ADD", "SUB", "MUL", "RELU", "CONCATENATION", "RESHAPE", "TRANSPOSE",
            "DEQUANTIZE", "LEAKY_RELU", "STRIDED_SLICE", "TANH"} <= kinds
    assert sum(k == "QUANTIZE" for k, _ in ii.ops) >= 2  # the input's and an int16 requantize
    for x in _inputs():
        ref = _litert_tensors(a16w8, x[None])
        ours = ii.op_outputs(x[None])
        for kind, out in ii.ops:
            np.testing.assert_array_equal(ours[out].astype(np.float64), ref.get_tensor(out).astype(np.float64),
                                          err_msg=f"{kind} (tensor {out})")


def test_batched_invoke_equals_one_at_a_time(a16w8):
    xs = _inputs()
    ii = IntegerInterpreter(a16w8)
    ii.set_tensor(ii.input, xs)
    ii.invoke()
    batch = ii.get_tensor(ii.output)
    for k, x in enumerate(xs):
        ref = _litert_tensors(a16w8, x[None])
        np.testing.assert_array_equal(batch[k], ref.get_tensor(ref.get_output_details()[0]["index"])[0])


def test_whole_image_through_the_runner(a16w8):
    """The tiled runner with the integer interpreter gives LiteRT's image, byte for byte, also where
    the last tile is shifted back over its neighbour (and LiteRT with two workers now gives the same
    image as with one: the tile cores partition the image)."""
    lr = (np.random.default_rng(1).random((53, 61, 3)) * 255).astype(np.uint8)
    ours = TFLiteRunner(a16w8, 2, overlap=4, workers=1, interpreter_factory=IntegerInterpreter)(lr)
    one = TFLiteRunner(a16w8, 2, overlap=4, workers=1)(lr)
    two = TFLiteRunner(a16w8, 2, overlap=4, workers=2, num_threads=2)(lr)
    np.testing.assert_array_equal(ours, one)
    np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize("length,tile,overlap", [(53, 24, 4), (24, 24, 4), (100, 64, 8), (65, 64, 13)])
def test_tile_cores_partition(length, tile, overlap):
    cores = tile_cores(length, tile, overlap)
    assert cores[0][1] == 0 and cores[-1][2] == length
    for (s, lo, hi), nxt in zip(cores, cores[1:] + [None]):
        assert s <= lo < hi <= s + tile
        if nxt is not None:
            assert hi == nxt[1]


def test_exact_conv_at_the_extremes():
    """Full-scale int16 inputs and int8 weights, including a reduction too long for 8-bit digits
    (3x3x128 = 1152 terms): the float32 digit convolutions still sum exactly."""
    rng = np.random.default_rng(0)
    for cin in (64, 128):
        x = rng.choice([-32768, 32767, -1, 0, 12345], size=(2, 6, 6, cin)).astype(np.int64)
        w = rng.choice([-128, 127, -127, 1, 0], size=(3, 3, cin, 4)).astype(np.int8)
        conv = ik.ExactConv(w, None, np.full(4, 1 << 30), np.full(4, 1), 0, ik.INT16, [1, 1, 1, 1], "VALID",
                            [1, 1, 1, 1])
        got = np.asarray(conv.exact_sum(x))
        windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))  # n, h, w, c, 3, 3
        want = np.einsum("nhwcij,ijco->nhwo", windows, w.astype(np.int64))
        np.testing.assert_array_equal(got.astype(np.int64), want)
        assert conv.bits == (8 if cin == 64 else 7)


def test_unsupported_models_are_refused_in_one_line():
    keras.utils.set_random_seed(0)
    inp = keras.Input((*HW, 3))
    out = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same")(inp)
    cal = calibration.calibration_set(2, HW, n_images=1, patches_per_image=1)
    tfl = uniform.convert_uniform(keras.Model(inp, out), "a16w8", calib=cal).tflite
    with pytest.raises(IntegerModelUnsupported, match="is not implemented by the integer interpreter") as e:
        IntegerInterpreter(tfl)
    assert "\n" not in str(e.value)
    int8 = uniform.convert_uniform(_every_op_model(), "int8", calib=calibration.calibration_set(2, HW, n_images=1)).tflite
    with pytest.raises(IntegerModelUnsupported, match="int16x8"):
        IntegerInterpreter(int8)


@pytest.mark.slow
def test_zoo_model_matches_litert_op_by_op():
    """QuickSRNet-Large x4 (shipped weights; its clips are SUBs of a broadcast constant) at the card's
    64x64 a16w8, on a real-photo tile."""
    fixed = models.with_fixed_shape(models.build("quicksrnet_large", 4, weights=True), "quicksrnet_large", 4,
                                    uniform.DEFAULT_INPUT_HW)
    cal = calibration.calibration_set(4, uniform.DEFAULT_INPUT_HW)
    tfl = uniform.convert_uniform(fixed, "a16w8", calib=cal).tflite
    x = np.asarray(calibration.calibration_set(4, uniform.DEFAULT_INPUT_HW, n_images=1, seed=9).patches[:1],
                   np.float32)
    ref, ii = _litert_tensors(tfl, x), IntegerInterpreter(tfl)
    ours = ii.op_outputs(x)
    for kind, out in ii.ops:
        np.testing.assert_array_equal(ours[out].astype(np.float64), ref.get_tensor(out).astype(np.float64),
                                      err_msg=f"{kind} (tensor {out})")


def test_evaluate_on_the_integer_interpreter(hr_dir, tmp_path):
    """deploy.evaluate / evaluate.py with the integer interpreter: LiteRT's scores, per image; refused
    where it does not apply (one line each)."""
    import deploy
    from tests.conftest import run_tool
    src = deploy.load_model("fsrcnn", 2)
    small = (16, 16)
    litert = deploy.evaluate(src, hr_dir, deploy.EvalConfig(input_size=small), precision="a16w8")
    ours = deploy.evaluate(src, hr_dir, deploy.EvalConfig(input_size=small, interpreter="integer"), precision="a16w8")
    assert [(i.name, i.psnr_y, i.ssim_y) for i in ours.images] == [(i.name, i.psnr_y, i.ssim_y) for i in litert.images]
    assert ours.to_json()["config"]["interpreter"] == "integer"
    with pytest.raises(deploy.errors.UserInputError, match="runs a16w8 models, not int8"):
        deploy.evaluate(src, hr_dir, deploy.EvalConfig(input_size=small, interpreter="integer"), precision="int8")
    with pytest.raises(deploy.errors.UserInputError, match="interpreter must be one of"):
        deploy.EvalConfig(interpreter="xnnpack")
    cli = run_tool("evaluate", "--model", "fsrcnn", "--scale", "2", "--precision", "a16w8", "--input_size", "16x16",
                   "--data", str(hr_dir), "--interpreter", "integer", "--json", str(tmp_path / "e.json"))
    assert cli.returncode == 0, cli.stderr[-2000:]
    import json
    assert json.loads((tmp_path / "e.json").read_text())["mean"]["psnr_y"] == pytest.approx(litert.mean["psnr_y"], abs=1e-4)
    both = run_tool("evaluate", "--model", "fsrcnn", "--scale", "2", "--precision", "a16w8", "--interpreter", "integer",
                    "--npu_emulate", "qualcomm:SM8650")
    assert both.returncode == 2 and "pick one" in both.stderr and "Traceback" not in both.stderr
