"""Why FSRCNN's int8 scores higher on the emulated NPU than on LiteRT's CPU: a PReLU probe.

FSRCNN is the only zoo model with PReLU. This builds the same three-conv net twice, once with
PReLU and once with ReLU, converts both to int8 (TFLiteConverter, 8 random calibration
inputs), compiles them for SM8650 and runs them on LiteRT's CPU interpreter and in QNN's HTP
emulation; it reports each one's mean absolute error against the float Keras model.

    python bench/npu_prelu_probe.py   # -> bench/results/npu_prelu_probe.json (~20 s)
"""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "npu_prelu_probe.json"
SOC = "SM8650"


def _net(act: str):
    from models._keras import keras
    keras.utils.set_random_seed(0)
    x_in = keras.Input((32, 32, 3), batch_size=1)
    x = x_in
    for i, ch in enumerate((16, 16)):
        x = keras.layers.Conv2D(ch, 3, padding="same", name=f"conv{i}")(x)
        x = (keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.25))(x)
             if act == "prelu" else keras.layers.ReLU()(x))
    return keras.Model(x_in, keras.layers.Conv2D(3, 3, padding="same", name="tail")(x))


def _run(interp, x: np.ndarray) -> np.ndarray:
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.set_tensor(i["index"], x)
    interp.invoke()
    return interp.get_tensor(o["index"])


def probe(act: str, data: list[np.ndarray]) -> dict:
    from deploy.convert.tflite_io import make_interpreter
    from deploy.npu import NpuEmulator, compile_tflite
    from models._keras import tf
    model = _net(act)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([d] for d in data)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    tflite = conv.convert()
    compiled = compile_tflite(tflite, SOC)
    cpu, npu, ref = [], [], []
    for x in data:
        ref.append(model(x).numpy())
        cpu.append(_run(make_interpreter(tflite, delegates=False), x))
        npu.append(_run(NpuEmulator(compiled.model, SOC), x))
    ref, cpu, npu = map(np.concatenate, (ref, cpu, npu))
    return {"activation": act, "whole": compiled.report.whole,
            "cpu_mean_abs_error": float(np.abs(cpu - ref).mean()),
            "npu_mean_abs_error": float(np.abs(npu - ref).mean())}


def main() -> None:
    rng = np.random.default_rng(0)
    data = [rng.random((1, 32, 32, 3), np.float32) for _ in range(8)]
    rows = [probe(a, data) for a in ("relu", "prelu")]
    for r in rows:
        r["npu_vs_cpu_error"] = round(r["npu_mean_abs_error"] / r["cpu_mean_abs_error"], 3)
        print(f"{r['activation']:<6} CPU error {r['cpu_mean_abs_error']:.5f}  emulated {SOC} error "
              f"{r['npu_mean_abs_error']:.5f}  ratio {r['npu_vs_cpu_error']:.2f}")
    OUT.write_text(json.dumps({"soc": SOC, "rows": rows}, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
