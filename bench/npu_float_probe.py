"""Why float ESPCN emulates ~8 dB below the CPU on Qualcomm's HTP (issue 28): where the error starts.

    python bench/npu_float_probe.py        (~1 min: 6 small compiles + QNN HTP emulation)

The shipped ESPCN x3 float model is cut after each layer (a prefix model, float TFLite), compiled
for SM8650 and run in the HTP emulator on one real 64x64 patch; the emulated output is compared with
the same prefix on the LiteRT CPU interpreter (mean and max difference). Then its last conv alone,
fed the CPU's hidden features, and a lone TANH on a ramp, each the same way. Writes
bench/results/npu_float_probe.json and prints the table.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402
from deploy._files import atomic_write  # noqa: E402
from models._keras import keras, tf  # noqa: E402

SOC = "SM8650"


def _diff(model, x) -> dict:
    from deploy.npu.emulate import emulated_interpreter
    tfl = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    got = emulated_interpreter(tfl, SOC)(x)
    got = got[0] if isinstance(got, (list, tuple)) else got
    d = got - model(x).numpy()
    return {"mean_difference": float(d.mean()), "max_abs_difference": float(np.abs(d).max())}


def main() -> None:
    from deploy.data import calibration
    t0 = time.time()
    m = models.build("espcn", 3, weights=True, input_shape=(64, 64))
    x = calibration.calibration_set(3, (64, 64), n_images=1, patches_per_image=1).patches[:1]
    rows = [{"probe": f"ESPCN up to {layer.name}", **_diff(keras.Model(m.input, layer.output), x)}
            for layer in m.layers[1:]]
    hidden = keras.Model(m.input, m.get_layer("conv2").output)(x).numpy()
    inp = keras.Input(hidden.shape[1:], batch_size=1)
    last = keras.layers.Conv2D(27, 3, padding="same")
    lone = keras.Model(inp, last(inp))
    last.set_weights(m.get_layer("conv3").get_weights())
    rows.append({"probe": "conv3 alone on the CPU's conv2 output", **_diff(lone, hidden)})
    ramp = np.linspace(-4, 4, 16 * 16 * 8, dtype=np.float32).reshape(1, 16, 16, 8)
    r_in = keras.Input((16, 16, 8), batch_size=1)
    rows.append({"probe": "TANH alone on a -4..4 ramp", **_diff(keras.Model(r_in, keras.layers.Activation("tanh")(r_in)), ramp)})
    w = m.get_layer("conv3").get_weights()[0]
    res = {"command": "python bench/npu_float_probe.py", "soc": SOC, "rows": rows,
           "conv3_weight_abs_sum_per_output_max": float(np.abs(w).sum(axis=(0, 1, 2)).max()),
           "seconds": round(time.time() - t0, 1)}
    atomic_write(ROOT / "bench/results/npu_float_probe.json", json.dumps(res, indent=1) + "\n")
    print(f"{'probe (float, emulated ' + SOC + ' minus LiteRT CPU)':<52}{'mean diff':>11}{'max |diff|':>12}")
    for r in rows:
        print(f"{r['probe']:<52}{r['mean_difference']:+11.5f}{r['max_abs_difference']:12.5f}")


if __name__ == "__main__":
    main()
