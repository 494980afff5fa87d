"""Check the latency cost model against measured desktop latency on random per-layer policies.

  python bench/latency_model.py                          # xlsr, fsrcnn, espcn, abpn at x3
  python bench/latency_model.py --models xlsr --policies 20 --runs 20

Per model: 20 seeded random policies (each layer a16w8 with a probability drawn per policy,
so the fraction of wide layers spreads from ~0 to ~1), converted through our per-layer path
(hybrid.quantize_policy, one shared calibration), timed whole-model with the LiteRT interpreter
(default delegates, 2 threads, warm-up then the median of --runs), and predicted with the
desktop_xnnpack device profile. Reports Spearman's rho and the median relative error
|pred - meas| / meas; prints a table and writes bench/results/latency_model.json.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
from absl import app, flags, logging
from scipy.stats import spearmanr

import models
from deploy import provenance
from deploy.data import calibration
from deploy.convert import per_layer as hybrid
from deploy.latency import cost_model
from deploy.convert import quantizer
from deploy._files import atomic_write
from deploy.convert.policy import Policy
from deploy.convert.quantizer import QuantizationError
from deploy.convert.tflite_io import TFLiteError, median_invoke_ms

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["xlsr", "fsrcnn", "espcn", "abpn"], "zoo models (shipped weights)")
flags.DEFINE_integer("scale", 3, "scale")
flags.DEFINE_integer("policies", 20, "random policies per model")
flags.DEFINE_integer("runs", 20, "timed runs per policy (median)")
flags.DEFINE_integer("seed", 0, "policy seed")
flags.DEFINE_integer("input_size", 64, "LR input side")
flags.DEFINE_string("profile", "desktop_xnnpack", "device profile to predict with")
flags.DEFINE_string("out", "bench/results/latency_model.json", "results JSON")

REPO = Path(__file__).resolve().parent.parent


def run_model(name: str, scale: int) -> dict:
    hw = (FLAGS.input_size, FLAGS.input_size)
    fixed = models.with_fixed_shape(models.build(name, scale, weights=True), name, scale, hw)
    prep = hybrid.prepare(fixed)
    cal = calibration.calibration_set(scale, hw, n_images=2, patches_per_image=2)
    qsv = quantizer.calibrate(prep.float_tflite, cal.patches)
    cm = cost_model.from_device_profile(prep, FLAGS.profile, model=name, scale=scale)
    rng = np.random.default_rng(FLAGS.seed)
    rows, skipped = [], []
    while len(rows) < FLAGS.policies and len(skipped) < FLAGS.policies:
        frac = float(rng.random())
        wide = tuple((l, "a16w8") for l in prep.layers if rng.random() < frac)
        policy = Policy(name, scale, "a8w8", wide)
        try:
            tfl, report = hybrid.quantize_policy(prep, policy, cal, qsv=qsv)
        except (QuantizationError, TFLiteError) as e:   # e.g. an int16 op LiteRT cannot prepare
            skipped.append({"layers_a16w8": [l for l, _ in wide], "error": str(e)[:200]})
            continue
        meas = median_invoke_ms(tfl, FLAGS.runs)
        pred = cm.predict_ms(policy.resolved(prep.layers))
        rows.append({"layers_a16w8": len(wide), "requantize_ops": report["requantize_ops"],
                     "measured_ms": round(meas, 4), "predicted_ms": round(pred, 4),
                     "rel_err": round(abs(pred - meas) / meas, 4)})
        logging.info("%s policy %d: %d/%d a16w8, measured %.3f ms, predicted %.3f ms", name,
                     len(rows), len(wide), len(prep.layers), meas, pred)
    rho = float(spearmanr([r["measured_ms"] for r in rows], [r["predicted_ms"] for r in rows])[0])
    return {"model": name, "scale": scale, "layers": len(prep.layers), "policies": rows,
            "skipped": skipped, "spearman_rho": round(rho, 3),
            "median_rel_err": round(statistics.median(r["rel_err"] for r in rows), 3),
            "provenance": provenance.collect({"calibration": cal.to_json()})}


def main(argv):
    del argv
    t0, results = time.time(), []
    for name in FLAGS.models:
        results.append(run_model(name, FLAGS.scale))
        r = results[-1]
        print(f"{name}: rho {r['spearman_rho']:.3f}, median rel err {r['median_rel_err']:.1%}",
              flush=True)
    print(f"\nprofile {FLAGS.profile}, {FLAGS.input_size}x{FLAGS.input_size} input, "
          f"{FLAGS.policies} random policies per model, median of {FLAGS.runs} runs\n")
    print(f"{'model':<10}{'layers':>7}{'policies':>9}{'meas ms (min-max)':>22}"
          f"{'pred ms (min-max)':>22}{'spearman':>10}{'med rel err':>12}")
    for r in results:
        m = [p["measured_ms"] for p in r["policies"]]
        p = [p["predicted_ms"] for p in r["policies"]]
        print(f"{r['model']:<10}{r['layers']:>7}{len(m):>9}{f'{min(m):.2f}-{max(m):.2f}':>22}"
              f"{f'{min(p):.2f}-{max(p):.2f}':>22}{r['spearman_rho']:>10.3f}"
              f"{r['median_rel_err']:>12.1%}")
    out = REPO / FLAGS.out if not Path(FLAGS.out).is_absolute() else Path(FLAGS.out)
    atomic_write(out, json.dumps({"profile": FLAGS.profile, "input_hw": [FLAGS.input_size] * 2,
                                  "runs": FLAGS.runs, "seed": FLAGS.seed, "threads": 2,
                                  "minutes": round((time.time() - t0) / 60, 1),
                                  "results": results}, indent=2) + "\n")
    print(f"\nwrote {out} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    app.run(main)
