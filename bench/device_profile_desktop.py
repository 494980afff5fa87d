"""Measure this machine's per-op-type throughput -> deploy/latency/profiles/desktop_xnnpack.json.

  python bench/device_profile_desktop.py            # ~5 min on 2 cores
  python bench/device_profile_desktop.py --runs 30 --out /tmp/p.json

Micro-benchmarks: for each op class (deploy/latency/device_profiles.py) a chain of 1 and of 5 identical
ops at two sizes (32x32x16, 64x64x32), quantized through our AEQ per-layer route at a8w8, a16w8
and float, timed with the LiteRT interpreter (default delegates, i.e. XNNPACK, 2 threads;
warm-up, then the median of the runs). Per-op time = (t5 - t1) / 4 (model I/O cancels); the two
sizes give a per-op overhead and a throughput. Requantize: 6 1x1 convs alternating a8w8/a16w8
versus all-a8w8 and all-a16w8; the excess over the 5 boundaries, at two sizes, gives ns per
element and the fixed cost of each XNNPACK <-> builtin-kernel partition switch.
Prints a table and writes the profile atomically.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from absl import app, flags, logging

import numpy as np

from deploy.convert import per_layer as hybrid

from deploy.convert import quantizer
from deploy.data.calibration import CalibrationSet
from deploy._files import atomic_write
from deploy.latency.device_profiles import PROFILE_DIR, from_json
from deploy.convert.policy import Policy
from deploy.convert.tflite_io import median_invoke_ms
from models._keras import keras

FLAGS = flags.FLAGS
flags.DEFINE_integer("runs", 20, "timed runs per model (median)")
flags.DEFINE_integer("threads", 2, "interpreter threads")
flags.DEFINE_string("out", str(PROFILE_DIR / "desktop_xnnpack.json"), "profile to write")

SIZES = ((32, 32, 16), (64, 64, 32))
CHAIN = (1, 5)
PRECISIONS = ("a8w8", "a16w8", "float")
L = keras.layers


def _link(klass: str, x, inp, c: int, i: int):
    """One op of `klass` mapping (H, W, C) -> (H, W, C). The converter cancels transpose pairs
    through elementwise ops and XNNPACK may merge consecutive int8 lookup-table ops, so each
    `activation` (TANH) and `copy` (TRANSPOSE) link is followed by a MUL with the input, whose
    measured time is subtracted afterwards (int16 ADD of same-scale inputs fails to prepare in
    LiteRT, hence MUL)."""
    n = f"{klass}_{i}"
    if klass == "conv_kxk":
        return L.Conv2D(c, 3, padding="same", name=n)(x)
    if klass == "conv_1x1":
        return L.Conv2D(c, 1, name=n)(x)
    if klass == "depthwise":
        return L.DepthwiseConv2D(3, padding="same", name=n)(x)
    if klass == "transpose_conv":
        return L.Conv2DTranspose(c, 3, padding="same", name=n)(x)
    if klass == "add_mul":
        return L.Multiply(name=n)([x, inp])
    if klass == "activation":
        return L.Multiply(name=n + "_mul")([L.Activation("tanh", name=n)(x), inp])
    if klass == "copy":
        return L.Multiply(name=n + "_mul")([L.Permute((2, 1, 3), name=n)(x), inp])
    raise ValueError(klass)


def _model(klass: str, size, n: int) -> keras.Model:
    h, w, c = size
    keras.utils.set_random_seed(0)
    inp = keras.Input((h, w, c), batch_size=1)
    x = inp
    for i in range(n):
        x = _link(klass, x, inp, c, i)
    return keras.Model(inp, x)


def _quantized(model: keras.Model, policies: dict[str, Policy]) -> dict[str, bytes]:
    prep = hybrid.prepare(model)
    h, w, c = model.input_shape[1:]
    rng = np.random.default_rng(0)
    cal = CalibrationSet(rng.random((4, h, w, c), dtype=np.float32), (), "random (timing only)")
    qsv = quantizer.calibrate(prep.float_tflite, cal.patches)
    return {k: hybrid.quantize_policy(prep, p, cal, qsv=qsv)[0] for k, p in policies.items()}


def _work(klass: str, size) -> int:
    h, w, c = size
    return {"conv_kxk": h * w * c * c * 9, "conv_1x1": h * w * c * c, "depthwise": h * w * c * 9,
            "transpose_conv": h * w * c * c * 9}.get(klass, h * w * c)


def per_op_ms(klass: str, runs: int, threads: int) -> dict:
    """{precision: {size: ms per op}} from chains of 1 and 5."""
    out = {p: {} for p in PRECISIONS}
    for size in SIZES:
        t = {}
        for n in CHAIN:
            m = _model(klass, size, n)
            tfls = _quantized(m, {p: Policy("bench", 1, p) for p in PRECISIONS})
            for p, tfl in tfls.items():
                t[(p, n)] = median_invoke_ms(tfl, runs, threads)
        for p in PRECISIONS:
            out[p][size] = (t[(p, CHAIN[1])] - t[(p, CHAIN[0])]) / (CHAIN[1] - CHAIN[0])
        logging.info("%s %s: %s", klass, size, {p: round(out[p][size], 4) for p in PRECISIONS})
    return out


def fit(work: dict, ms: dict) -> tuple[float, float]:
    """(overhead_us, rate G/s) from per-op ms at two sizes: ms = ovh + work / rate."""
    (s1, s2) = SIZES
    d = ms[s2] - ms[s1]
    if d <= 0:   # noise swamped the difference: all time is work at the large size
        return 0.0, work[s2] / max(ms[s2], 1e-6) / 1e6
    rate = (work[s2] - work[s1]) / d / 1e6   # G per second
    ovh = ms[s1] - work[s1] / rate / 1e6
    return max(ovh, 0.0) * 1e3, rate


def requantize(runs: int, threads: int) -> tuple[float, float, dict]:
    """ns per element and partition-switch us, from 6 alternating 1x1 convs at two sizes."""
    k, per = 6, {}
    for size in SIZES:
        m = _model("conv_1x1", size, k)
        names = [f"conv_1x1_{i}" for i in range(k)]
        alt = Policy("bench", 1, "a8w8", tuple((n, "a16w8") for n in names[1::2]))
        tfls = _quantized(m, {"a8w8": Policy("bench", 1, "a8w8"),
                              "a16w8": Policy("bench", 1, "a16w8"), "alt": alt})
        t = {key: median_invoke_ms(tfl, runs, threads) for key, tfl in tfls.items()}
        per[size] = (t["alt"] - (t["a8w8"] + t["a16w8"]) / 2) / (k - 1)
        logging.info("requantize %s: %.4f ms per boundary (%s)", size, per[size], t)
    el = {s: s[0] * s[1] * s[2] for s in SIZES}
    ovh_us, rate = fit(el, per)
    return 1.0 / rate, ovh_us, {f"{s[0]}x{s[1]}x{s[2]}": round(v, 4) for s, v in per.items()}


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _sig(x: float, n: int = 3) -> float:
    return float(f"{x:.{n}g}")


def main(argv):
    del argv
    t0 = time.time()
    runs, threads = FLAGS.runs, FLAGS.threads
    today = datetime.date.today().isoformat()
    command = "python bench/device_profile_desktop.py " + " ".join(sys.argv[1:])
    how = (f"measured {today} by `{command.strip()}` on {_cpu()} ({os.cpu_count()} cores), "
           f"LiteRT interpreter, default delegates (XNNPACK), {threads} threads, median of {runs} runs")
    classes = ("conv_kxk", "conv_1x1", "depthwise", "transpose_conv", "add_mul", "activation",
               "copy")
    raw = {k: per_op_ms(k, runs, threads) for k in classes}
    unresolved = set()
    for k in ("activation", "copy"):   # their links carry a MUL: subtract its measured time
        for p in PRECISIONS:
            for s in SIZES:
                raw[k][p][s] -= raw["add_mul"][p][s]
                if raw[k][p][s] <= 1e-4:   # below timing noise: record it, keep a floor
                    unresolved.add((k, p))
                    raw[k][p][s] = 1e-4
    fits = {k: {p: fit({s: _work(k, s) for s in SIZES}, raw[k][p]) for p in PRECISIONS}
            for k in classes}
    overhead = {p: statistics.median(fits[k][p][0] for k in classes) for p in PRECISIONS}
    ops = {}
    for k in classes:  # rate at the large size with the per-precision overhead taken out
        big = SIZES[1]
        ops[k] = {p: _sig(_work(k, big) / max(raw[k][p][big] - overhead[p] / 1e3, 1e-4) / 1e6)
                  for p in PRECISIONS}
        if any(u[0] == k for u in unresolved):
            ops[k]["unresolved"] = sorted(p for kk, p in unresolved if kk == k)
        ops[k]["unit"] = "GMAC/s" if k.startswith(("conv", "depth", "transpose")) else "Gelem/s"
        ops[k]["source"] = (f"{how}; chains of 1 and 5 ops at {SIZES}" +
                            (f"; {k} links carry a MUL, minus the measured MUL" if k in ("activation", "copy") else "") + ("; add_mul measured on MUL chains" if k == "add_mul" else "")
                            + ("; 'unresolved' precisions: time below timing noise, rate "
                               "floored at 1e-4 ms per op" if k in {u[0] for u in unresolved} else ""))
    ops["concat"] = {p: ops["copy"][p] for p in PRECISIONS}
    ops["concat"].update(unit="Gelem/s", source="not measured separately: CONCATENATION copies "
                         "its output like TRANSPOSE, so the measured 'copy' rates are used")
    ns_el, switch_us, per_boundary = requantize(runs, threads)
    ops["quantize"] = {p: _sig(1.0 / ns_el) for p in PRECISIONS}
    ops["quantize"].update(unit="Gelem/s", source=f"{how}; the requantize per-element cost "
                           "below (float<->int QUANTIZE/DEQUANTIZE assumed alike)")
    invoke = median_invoke_ms(_quantized(_model("add_mul", (8, 8, 4), 1),
                                 {"a8w8": Policy("bench", 1, "a8w8")})["a8w8"], runs * 5, threads)
    profile = {
        "name": "desktop_xnnpack",
        "description": "This desktop CPU, LiteRT interpreter with XNNPACK (int8/float) and the "
                       "builtin int16 kernels (XNNPACK takes no int16), 2 threads",
        "measured": {"command": command.strip(), "date": today, "cpu": _cpu(),
                     "cpu_count": os.cpu_count(), "threads": threads, "runs": runs,
                     "minutes": round((time.time() - t0) / 60, 1),
                     "requantize_ms_per_boundary": per_boundary},
        "accelerator": {"name": "XNNPACK delegate", "precisions": ["a8w8", "float"],
                        "source": "XNNPACK delegates int8 and float ops but no int16 ones "
                                  "(LiteRT log: int16 nodes stay on builtin kernels), so each "
                                  "a8w8/a16w8 boundary is a delegate partition boundary"},
        "ops": ops,
        "op_overhead_us": {**{p: _sig(overhead[p], 2) for p in PRECISIONS},
                           "source": f"{how}; median over op classes of the intercept of "
                                     "per-op time vs work at two sizes"},
        "invoke_overhead_us": {"a8w8": _sig(invoke * 1e3, 2),
                               "source": f"{how}; whole invoke of a one-ADD 8x8x4 a8w8 model"},
        "requantize": {"ns_per_element": _sig(ns_el),
                       "source": f"{how}; 6 alternating a8w8/a16w8 1x1 convs vs uniform ones "
                                 f"at {SIZES}, slope per element"},
        "partition_switch": {"us": _sig(switch_us, 2),
                             "source": f"{how}; intercept of the same fit (XNNPACK <-> builtin "
                                       "kernels)"},
    }
    from_json(profile, FLAGS.out)   # refuse to write a profile that would not load
    atomic_write(Path(FLAGS.out), json.dumps(profile, indent=2) + "\n")
    print(f"\n{'class':<16}{'unit':<9}" + "".join(f"{p:>10}" for p in PRECISIONS))
    for k, e in ops.items():
        print(f"{k:<16}{e['unit']:<9}" + "".join(f"{e[p]:>10.3g}" for p in PRECISIONS))
    print(f"op overhead us: {profile['op_overhead_us']}; invoke us: {invoke * 1e3:.0f}; "
          f"requantize {ns_el:.3g} ns/element + {switch_us:.3g} us per switch")
    print(f"wrote {FLAGS.out} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    app.run(main)
