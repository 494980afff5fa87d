"""PReLU quantized on every route (issue 29 item 2): relu(x) - alpha * relu(-x) is exact in float, as a
Keras layer (tf_keras) and as a flatbuffer rewrite (Keras 3, SavedModel, float TFLite); no zoo model
keeps a float op at int8, a16w8 or a hybrid; a Keras 3 PReLU model's written policy converts."""
import numpy as np
import pytest

import deploy
import models
from deploy.commands import policy_jobs
from deploy.convert import per_layer, prelu_graph, rewrite, sources
from deploy.convert.policy import Policy
from deploy.convert.tflite_io import make_interpreter, summarize
from models._keras import keras

HW = (16, 16)


def _run(tflite: bytes, x: np.ndarray) -> np.ndarray:
    interp = make_interpreter(tflite, delegates=False)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def _no_float_op(tflite: bytes) -> None:
    s = summarize(make_interpreter(tflite, delegates=False))
    assert [o.op for o in s.float_ops()] == [] and "PRELU" not in s.op_counts()
    assert s.op_counts().get("DEQUANTIZE", 0) <= 1  # only the float32 output's; no float island


@pytest.mark.parametrize("precision", ["int8", "a16w8"])
def test_keras_rewrite_is_exact_in_float(precision):
    """FSRCNN (shipped weights; PReLU alphas from -0.05 to 1.36) before and after the rewrite."""
    model = models.with_fixed_shape(models.build("fsrcnn", 3, weights=True), "fsrcnn", 3, HW)
    new, what = rewrite.rewrite_for_converter(model, precision)
    assert len(what) == 7 and all(v == "PReLU -> PReLUOps" for v in what.values())
    x = np.random.default_rng(0).random((2, *HW, 3), np.float32)
    ref, got = model(x).numpy(), new(x).numpy()
    assert np.abs(ref - got).max() <= 1e-6 * max(1.0, float(np.abs(ref).max()))
    alpha = model.get_layer("map1_prelu").get_weights()[0]
    assert (alpha < 0).any() or (alpha > 1).any()  # max(x, alpha * x) would not be exact here


def _keras3_prelu_model(path):
    import keras as k3
    k3.utils.set_random_seed(3)
    inp = k3.Input((None, None, 3))
    x = k3.layers.Conv2D(8, 3, padding="same", name="c1")(inp)
    x = k3.layers.PReLU(shared_axes=[1, 2], alpha_initializer=k3.initializers.RandomUniform(-0.3, 1.2),
                        name="p_re_lu")(x)
    x = k3.layers.Conv2D(12, 3, padding="same", name="c2")(x)
    out = k3.layers.Conv2DTranspose(3, 4, strides=2, padding="same", name="up")(x)
    k3.Model(inp, out).save(path)
    return path


@pytest.fixture(scope="module")
def keras3_prelu(tmp_path_factory):
    return _keras3_prelu_model(tmp_path_factory.mktemp("k3") / "prelu.keras")


def test_graph_rewrite_is_exact_and_keeps_the_layer(keras3_prelu):
    src = sources.resolve(None, 2, keras_model=str(keras3_prelu))
    original, _ = src.float_tflite(HW)
    assert "PRELU" in summarize(make_interpreter(original, delegates=False)).op_counts()
    prep = per_layer.prepare_source(src, HW)
    assert prep.rewritten == {"p_re_lu": prelu_graph.WHAT}
    assert [o.layer for o in prep.ops if o.op in ("RELU", "MUL", "SUB")] == ["p_re_lu"] * 4
    x = np.random.default_rng(1).random((1, *HW, 3), np.float32)
    assert np.abs(_run(original, x) - _run(prep.float_tflite, x)).max() <= 1e-6
    float_q = deploy.quantize(src, "float", input_size=HW)  # float keeps the source's own graph
    assert float_q.tflite_bytes.count(b"srd_prelu") == 0


def test_keras3_prelu_written_policy_converts(keras3_prelu, tmp_path):
    src = sources.resolve(None, 2, keras_model=str(keras3_prelu))
    for precision in ("a8w8", "int16x8"):
        path = tmp_path / f"{precision}.json"
        path.write_text(policy_jobs.write_policy(src, precision, HW))
        rep = policy_jobs.convert_with_policy(src, str(path), tmp_path / f"{precision}.tflite", input_hw=HW)
        assert rep["float_ops"] == [] and rep["verified"]
        _no_float_op((tmp_path / f"{precision}.tflite").read_bytes())


def test_float_tflite_source_with_prelu(keras3_prelu, tmp_path):
    """A float TFLite from any framework: op groups are named from its own graph (the PRELU joins
    its conv's group as before) and quantize whole at a8w8 and a16w8."""
    k3src = sources.resolve(None, 2, keras_model=str(keras3_prelu))
    path = tmp_path / "prelu_float.tflite"
    path.write_bytes(k3src.float_tflite(HW)[0])
    src = deploy.load_model(str(path), 2)
    unrewritten = per_layer.prepare_source(src, HW, rewrite_prelu=False)
    prep = per_layer.prepare_source(src, HW)
    assert prep.layers == unrewritten.layers and prep.rewritten
    for p in ("a8w8", "a16w8"):
        q = deploy.quantize(src, Policy.for_layers(src.name, 2, p, prep.layers), input_size=HW)
        _no_float_op(q.tflite_bytes)


def test_saved_model_with_prelu(keras3_prelu, tmp_path):
    """A SavedModel from Keras 3 `model.export()`: no Keras layers, the PRELU op rewritten all the same."""
    import keras as k3
    k3.models.load_model(keras3_prelu).export(str(tmp_path / "sm"), verbose=False)
    src = deploy.load_model(str(tmp_path / "sm"), 2)
    assert src.framework == "saved_model"
    for precision in ("int8", "int16x8"):
        q = deploy.quantize(src, precision, deploy.QuantizeConfig(calib_images=2), input_size=HW)
        assert q.report["rewritten_activations"] and q.report["float_ops"] == []
        _no_float_op(q.tflite_bytes)


ZOO = [(name, spec.scales[0]) for name, spec in models.MODELS.items()]


@pytest.mark.parametrize("name, scale", ZOO)
def test_no_float_op_in_any_zoo_model(name, scale, random_weights):
    """int8 (the chosen route), a16w8 and a hybrid (the hand policy: input layers and tail a16w8)."""
    src = sources.resolve(name, scale, weights=str(random_weights(name, scale)))
    kw = {"input_size": HW}
    q8 = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, val_images=2), **kw)
    kw["config"] = deploy.QuantizeConfig(calib_images=2)
    _no_float_op(q8.tflite_bytes)
    _no_float_op(deploy.quantize(src, "a16w8", **kw).tflite_bytes)
    prep = per_layer.prepare_source(src, HW)
    hybrid = per_layer.hand_policy(prep, name, scale)
    assert {p for _, p in hybrid.layers} == {"a16w8"} and hybrid.default == "a8w8"
    _no_float_op(deploy.quantize(src, hybrid, **kw).tflite_bytes)
    if any(isinstance(l, keras.layers.PReLU) for l in src.model.layers):
        assert q8.report.get("rewritten_activations") or q8.report["int8_route"]["chosen"].startswith("per_layer")
