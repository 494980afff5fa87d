"""deploy.npu with the real Qualcomm compiler and HTP emulator, on tiny models built here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deploy.errors import SrdeployError

pytest.importorskip("onnxruntime_qnn")

LOGS = Path(__file__).resolve().parent.parent / "data" / "npu_logs"
H = W = 16
R, C = 2, 3


def _net(rank6: bool, dynamic: bool = False):
    from models._keras import keras, tf
    keras.utils.set_random_seed(0)
    x = keras.Input((None, None, C) if dynamic else (H, W, C), batch_size=1)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(R * R * C, 3, padding="same")(y)
    if dynamic:
        y = keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, R))(y)
    elif rank6:
        y = keras.layers.Reshape((H, W, R, R, C))(y)
        y = keras.layers.Permute((1, 3, 2, 4, 5))(y)
        y = keras.layers.Reshape((H * R, W * R, C))(y)
    else:  # rank-4 pixel shuffle: equals depth_to_space, and HTP takes it whole
        y = keras.layers.Lambda(lambda t: tf.reshape(tf.transpose(tf.reshape(t, [H, W, R, R * C]), (0, 2, 1, 3)),
                                                     [1, H * R, W * R, C]))(y)
    return keras.Model(x, y)


def _convert(model, mode: str) -> bytes:
    from models._keras import quiet_native_stderr, tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float":
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([rng.random((1, H, W, C), dtype=np.float32)] for _ in range(8))
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if mode == "int8"
            else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    with quiet_native_stderr():
        return conv.convert()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """rank-4 shuffle at int8 and 16x8, rank-6 shuffle at int8, a dynamic-shape float model."""
    d = tmp_path_factory.mktemp("npu_models")
    r4, r6 = _net(False), _net(True)
    out = {}
    for name, model, mode in [("r4_int8", r4, "int8"), ("r4_16x8", r4, "16x8"), ("r6_int8", r6, "int8"),
                              ("dynamic", _net(False, dynamic=True), "float")]:
        out[name] = d / f"{name}.tflite"
        out[name].write_bytes(_convert(model, mode))
    return out


@pytest.fixture(scope="session")
def compiled(tiny):
    from deploy.npu import compile_tflite
    return {name: compile_tflite(tiny[name], "SM8650") for name in ("r4_int8", "r4_16x8", "r6_int8")}


def _cpu(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(float(np.max(np.abs(b))) ** 2 / mse) if mse else float("inf")


@pytest.mark.parametrize("name", ["r4_int8", "r4_16x8"])
def test_rank4_shuffle_compiles_whole(compiled, name):
    r = compiled[name].report
    assert (r.ops_on_npu, r.ops_total, r.partitions, r.cpu_ops) == (7, 7, 1, ())
    assert r.whole and r.htp_arch == 75 and len(r.context_binary_bytes) == 1
    assert r.ddr and r.versions["qairt"].startswith("2.51") and 0 < r.compile_seconds < 30


def test_rank6_shuffle_leaves_reshape_transpose_on_cpu_with_reason(compiled):
    r = compiled["r6_int8"].report
    assert (r.ops_on_npu, r.ops_total, r.partitions) == (4, 7, 2) and not r.whole
    assert [c.op for c in r.cpu_ops] == ["RESHAPE", "TRANSPOSE", "RESHAPE"]
    assert all("rank-6" in c.reason and "rank-4" in c.reason for c in r.cpu_ops)


@pytest.mark.parametrize("name,layout,min_db", [("r4_int8", "npu", 35), ("r6_int8", "npu cpu npu", 35),
                                                ("r4_16x8", "npu", 60)])
def test_emulation_agrees_with_litert_cpu(tiny, compiled, name, layout, min_db):
    from deploy.npu import NpuEmulator
    emu = NpuEmulator(compiled[name].model, "SM8650")
    assert emu.layout == layout
    x = np.random.default_rng(1).random((1, H, W, C), dtype=np.float32)
    y = emu(x)
    ref = _cpu(tiny[name], x)
    assert y.shape == ref.shape == (1, H * R, W * R, C) and y.dtype == np.float32
    assert _psnr(y, ref) > min_db
    assert _psnr(y, ref) < 200  # the NPU rounds differently: it really ran, not a CPU copy
    # the interpreter call shape a TFLite SR runner uses
    d = emu.get_input_details()[0]
    emu.set_tensor(d["index"], x)
    emu.invoke()
    np.testing.assert_array_equal(emu.get_tensor(emu.get_output_details()[0]["index"]), y)


def test_emulator_refuses_binary_of_a_newer_arch(tiny):
    from deploy.npu import NpuEmulator, compile_tflite
    v81 = compile_tflite(tiny["r4_int8"], "SM8850").model
    with pytest.raises(SrdeployError, match="compiled for another SoC"):
        NpuEmulator(v81, "SM8650")


@pytest.mark.parametrize("soc,arch", [("SM8550", 73), ("SM8750", 79)])
def test_soc_table_matches_compiler(tiny, soc, arch):
    from deploy.npu import compile_tflite, resolve_soc
    r = compile_tflite(tiny["r4_int8"], soc)
    log_id = int(r.log.split("SoC model: ")[1].split()[0])
    assert (r.report.htp_arch, log_id) == (arch, resolve_soc(soc).qnn_soc_id) and r.report.whole


def test_bad_inputs_raise_one_line_errors(tiny, compiled, tmp_path):
    from deploy.npu import compile_tflite, resolve_soc
    cases = {"unknown SoC": lambda: resolve_soc("SM1234"),
             "already compiled": lambda: compile_tflite(compiled["r4_int8"].model, "SM8650"),
             "dynamic": lambda: compile_tflite(tiny["dynamic"], "SM8650"),
             "not a TFLite": lambda: compile_tflite(b"\0" * 64, "SM8650"),
             "corrupt": lambda: compile_tflite(tiny["r4_int8"].read_bytes()[:1000], "SM8650")}
    messages = {}
    for what, fn in cases.items():
        with pytest.raises(SrdeployError) as e:
            fn()
        messages[what] = str(e.value)
        assert "\n" not in messages[what]
    assert "SM8650" in messages["unknown SoC"] and "DISPATCH_OP" in messages["already compiled"]
    assert "serving_default" in messages["dynamic"] and "-1" in messages["dynamic"]


def test_stub_is_built_on_a_fresh_machine(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("SRDEPLOY_CACHE_DIR", str(tmp_path / "cache"))  # the one user cache (deploy/cache_dirs.py)
    from deploy.npu import compile_tflite
    assert compile_tflite(tiny["r4_int8"], "SM8650").report.whole
    assert list((tmp_path / "cache").glob("qairt-*/stub/libQnnLpai.so"))


# The pure log parser, on captured real logs.
def test_parse_rank6_log():
    from deploy.npu.compile_log import parse_compile_log
    log = parse_compile_log((LOGS / "sm8650_rank6_shuffle_int8.log").read_text())
    assert log.partitions == ((0, 4, 7, 2),) and log.context_binary_bytes == (57344, 49152)
    assert (log.sdk_version, log.qnn_soc_id, log.htp_arch, log.errors) == ("2.51.0.260929181845", 57, 75, ())
    assert [(r.op_index, r.op, r.qnn_op) for r in log.rejections] == [
        (3, "Reshape", "Reshape_4"), (4, "Transpose", "Transpose_5"), (5, "Reshape", "Reshape_6")]
    assert log.rejections[1].outputs == ("model_1/permute/transpose",)
    assert log.rejections[1].qnn_io[1] == "SFIXED_POINT_8[1,16,2,16,2,3]"
    assert all(r.messages == ("has incorrect Rank 6.",) for r in log.rejections)
    assert [d.write_total_bytes for d in log.ddr] == [8192, 16384] and all(d.spill_bytes == 0 for d in log.ddr)


def test_parse_minimum_and_deconv_log():
    from deploy.npu.compile_log import parse_compile_log
    log = parse_compile_log((LOGS / "sm8650_minimum_deconv_16x8.log").read_text())
    minimum, deconv = log.rejections
    assert minimum.messages == () and "unsigned 16-bit" in minimum.reason  # validator gave no reason
    assert deconv.messages == ("Incorrect output dimension at index 1. Expected 28 but got 30.",)
    assert "sub-pixel convolution" in deconv.reason


def test_parse_nothing_selected_log():
    from deploy.npu.compile_log import parse_compile_log
    log = parse_compile_log((LOGS / "sm8650_nothing_selected.log").read_text())
    assert log.partitions == ((0, 0, 1, 0),) and log.rejections == () and log.context_binary_bytes == ()
