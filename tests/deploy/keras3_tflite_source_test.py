"""Users' own models that are not tf_keras: Keras 3 (`import keras`) .keras files with a registered
custom layer or Rescaling + Conv2DTranspose, and a float TFLite exported from Keras 3. Each goes
through --list_layers, --write_policy, --policy (int16 and int8 convs really mixed, read back),
evaluate and the search; bad inputs are one line, exit 2."""
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import keras  # Keras 3, not tf_keras

from deploy.commands import jobs, policy_jobs, search_jobs
from deploy.commands.cli import run_cli
from deploy.convert import per_layer, sources
from deploy.convert.policy import Policy
from deploy.convert.tflite_io import make_interpreter

assert keras.__version__.startswith("3")
ROOT = Path(__file__).resolve().parents[2]
HW = (16, 16)

LAYERS_PY = textwrap.dedent('''
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="k3test")
    class PixelShuffle(keras.layers.Layer):
        """depth-to-space written the usual way (tf.nn.depth_to_space)."""
        def __init__(self, scale, **kw):
            super().__init__(**kw)
            self.scale = scale

        def call(self, x):
            import tensorflow as tf
            return tf.nn.depth_to_space(x, self.scale)

        def get_config(self):
            return {**super().get_config(), "scale": self.scale}
''')


def _espcn(layers_mod) -> keras.Model:
    keras.utils.set_random_seed(1)
    inp = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(8, 5, padding="same", activation="tanh", name="feat")(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="conv_1")(x)
    x = keras.layers.Conv2D(9, 3, padding="same", name="up",
                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))(x)
    return keras.Model(inp, layers_mod.PixelShuffle(3, name="shuffle")(x), name="espcn")


def _fsrcnn(batch_shape=(None, None, None, 3)) -> keras.Model:
    """[0, 255] in and out, Rescaling inside, a stride-3 Conv2DTranspose at the end."""
    keras.utils.set_random_seed(2)
    inp = keras.Input(batch_shape=batch_shape)
    y = keras.layers.Rescaling(1 / 255.0, name="in_scale")(inp)
    y = keras.layers.Conv2D(8, 5, padding="same", activation="relu", name="extract")(y)
    y = keras.layers.Conv2D(4, 1, padding="same", activation="relu", name="shrink")(y)
    y = keras.layers.Conv2D(8, 1, padding="same", activation="relu", name="expand")(y)
    y = keras.layers.Conv2DTranspose(3, 9, strides=3, padding="same", name="deconv")(y)
    return keras.Model(inp, keras.layers.Rescaling(255.0, name="out_scale")(y), name="fsrcnn")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import importlib.util
    import tensorflow as tf
    d = tmp_path_factory.mktemp("k3")
    (d / "my_layers.py").write_text(LAYERS_PY)
    spec = importlib.util.spec_from_file_location("k3test_layers", d / "my_layers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _espcn(mod).save(d / "espcn.keras")
    _fsrcnn().save(d / "fsrcnn.keras")
    # what a user does: fixed-size Keras 3 model -> TFLiteConverter (Keras' own export route)
    fixed = _fsrcnn((1, *HW, 3))
    fixed.set_weights(_fsrcnn().get_weights())
    (d / "fsrcnn_float.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(fixed).convert())
    return d


CASES = {  # name -> (resolve kwargs, a conv to run a16w8, one to run a8w8)
    "keras3_espcn": (lambda d: dict(keras_model=str(d / "espcn.keras"), channels="y"), "feat", "up"),
    "keras3_fsrcnn": (lambda d: dict(keras_model=str(d / "fsrcnn.keras"), value_range="0-255"), "extract", "deconv"),
    "float_tflite": (lambda d: dict(float_tflite=str(d / "fsrcnn_float.tflite"), value_range="0-255"), None, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_list_write_policy_convert_evaluate_search(case, files, hr_dir, tmp_path):
    kwargs, wide, narrow = CASES[case]
    src = sources.resolve(None, 3, **kwargs(files))
    assert src.framework == {"float_tflite": "tflite"}.get(case, "keras3")
    table = policy_jobs.list_layers(src, HW)
    prep = per_layer.prepare_source(src, HW)
    if case == "keras3_espcn":  # Keras 3 layer names are the policy keys; the shuffle is RESHAPE/TRANSPOSE
        assert prep.layers == ["feat", "conv_1", "up", "shuffle"]
        assert "RESHAPE,TRANSPOSE" in table
    elif case == "keras3_fsrcnn":  # Rescaling folds into the convs
        assert prep.layers == ["extract", "shrink", "expand", "deconv"]
    else:  # op groups named from the graph, stable across runs
        assert len(prep.layers) == 4 and prep.layers == per_layer.prepare_source(src, HW).layers
        wide, narrow = prep.layers[0], prep.layers[-1]
    assert all(n in table for n in prep.layers)
    pol = json.loads(policy_jobs.write_policy(src, "a8w8", HW))
    assert sorted(pol["layers"]) == sorted(prep.layers)
    pol["layers"][wide] = "a16w8"
    (tmp_path / "p.json").write_text(json.dumps(pol))
    out = tmp_path / "m.tflite"
    rep = policy_jobs.convert_with_policy(src, str(tmp_path / "p.json"), out, input_hw=HW,
                                          calib_dir=str(hr_dir), calib_images=2)
    by = {l["layer"]: l for l in rep["layers"]}
    assert by[wide]["actual"] == "a16w8" and by[narrow]["actual"] == "a8w8" and rep["verified"]
    # read back from the file: int16 and int8 conv outputs side by side
    interp = make_interpreter(str(out), delegates=False)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    conv_dtypes = {np.dtype(tensors[o["outputs"][0]]["dtype"]).name for o in interp._get_ops_details()
                   if o["op_name"] in ("CONV_2D", "TRANSPOSE_CONV")}
    assert conv_dtypes == {"int16", "int8"}
    res = jobs.evaluate_tflite(str(out), data_dir=str(hr_dir))  # scale + convention from its metadata
    assert res.scale == 3 and np.isfinite(res.to_json()["mean"]["psnr_y"])
    s = search_jobs.setup(src, search_jobs.SearchConfig(input_size=HW, calib_dir=str(hr_dir), calib_images=2,
                                                        val_dir=str(hr_dir), val_images=2, budget_db=3.0, max_evals=8))
    assert [l for g in s.groups for l in g.layers] == prep.layers
    r = search_jobs.run_search(s, tmp_path / "found.json", progress=False)
    found = Policy.load(tmp_path / "found.json")
    assert set(found.resolved(prep.layers)) == set(prep.layers) and r is not None


def test_float_tflite_uniform_and_python_api(files, hr_dir):
    import deploy
    src = deploy.load_model(str(files / "fsrcnn_float.tflite"), scale=3, value_range="0-255")
    q = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2), calib_dir=str(hr_dir))
    assert q.report["precision"] == "int8" and q.report["uniform_via"] == "per-layer policy"
    assert q.report["input_shape"] == [1, *HW, 3]
    assert deploy.quantize(src, "float").report["source"] == "float_tflite"
    k3 = deploy.load_model(str(files / "fsrcnn.keras"), scale=3, value_range="0-255")
    assert k3.framework == "keras3"
    from deploy.experimental import qat  # QAT on the quantized graph: any source the per-layer route takes
    opts, rep = qat.finetune_source(k3, Policy("fsrcnn", 3, "a8w8"), HW, steps=1, train_dir=str(hr_dir),
                                    calib_images=2)
    assert opts.label == "qat" and rep["steps"] == 1 and rep["learned_ranges"] > 0, rep
    q = deploy.quantize(k3, Policy("fsrcnn", 3, "a8w8"), deploy.QuantizeConfig(calib_images=2, ptq=opts), input_size=HW)
    assert q.report["ptq"]["qat"]["steps"] == 1


def _one_line_exit_2(capsys, fn) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run_cli(fn)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error: ") and "\n" not in err and len(err) < 400, err
    return err


def test_bad_inputs_one_line(files, tmp_path, capsys):
    # a Lambda layer, safe mode
    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)).save(tmp_path / "lam.keras")
    err = _one_line_exit_2(capsys, lambda: sources.resolve(None, 3, keras_model=str(tmp_path / "lam.keras")))
    assert "Lambda" in err and "double" in err and "--unsafe_deserialization" in err
    # an already-quantized TFLite
    q = tmp_path / "q.tflite"
    q.write_bytes(__import__("deploy").quantize(sources.resolve(None, 3, float_tflite=str(files / "fsrcnn_float.tflite"),
                                                                value_range="0-255"), "int8",
                                                __import__("deploy").QuantizeConfig(calib_images=1)).tflite_bytes)
    err = _one_line_exit_2(capsys, lambda: sources.resolve(None, 3, float_tflite=str(q)))
    assert "already quantized" in err and "float" in err
    # output not scale x input
    err = _one_line_exit_2(capsys, lambda: sources.resolve(None, 2, float_tflite=str(files / "fsrcnn_float.tflite")))
    assert "not x2" in err and "48x48x3" in err
    # a PyTorch checkpoint where a model is expected
    pth = tmp_path / "net.pth"
    with zipfile.ZipFile(pth, "w") as z:
        z.writestr("net/data.pkl", b"\x80\x02}q\x00.")
    for kw in (dict(keras_model=str(pth)), dict(float_tflite=str(pth))):
        assert "PyTorch checkpoint" in _one_line_exit_2(capsys, lambda: sources.resolve(None, 3, **kw))
    assert "litert-torch" in _one_line_exit_2(capsys, lambda: sources.load_model(str(pth), 3))
    # batch != 1, and two outputs
    _fsrcnn((2, None, None, 3)).save(tmp_path / "b2.keras")
    assert "batch 2" in _one_line_exit_2(capsys, lambda: sources.resolve(None, 3, keras_model=str(tmp_path / "b2.keras")))
    inp = keras.Input((None, None, 3))
    keras.Model(inp, [keras.layers.Conv2D(3, 3, padding="same")(inp), inp]).save(tmp_path / "two.keras")
    err = _one_line_exit_2(capsys, lambda: sources.resolve(None, 3, keras_model=str(tmp_path / "two.keras")))
    assert "2 output(s)" in err


def test_custom_objects(files):
    """The real CLI without --custom_objects: one line naming the class, exit 2. With it (the
    module is imported and registers the class), the model loads."""
    cmd = [sys.executable, str(ROOT / "tools" / "convert.py"), "--keras_model", str(files / "espcn.keras"),
           "--scale", "3", "--channels", "y", "--input_size", "16x16", "--list_layers"]
    bad = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "k3test>PixelShuffle" in bad.stderr and "--custom_objects" in bad.stderr
    assert len([l for l in bad.stderr.splitlines() if l.startswith("error")]) == 1
    keras.saving.get_custom_objects().pop("k3test>PixelShuffle")  # as in a fresh process
    with pytest.raises(Exception, match="k3test>PixelShuffle"):
        sources.resolve(None, 3, keras_model=str(files / "espcn.keras"), channels="y")
    src = sources.resolve(None, 3, keras_model=str(files / "espcn.keras"), channels="y",
                          custom_objects=str(files / "my_layers.py"))
    assert src.model.get_layer("shuffle").__class__.__name__ == "PixelShuffle"
