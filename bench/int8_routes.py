"""Which int8 is better per zoo model: the TFLite converter's or the per-layer all-a8w8 model?

  python bench/int8_routes.py                      # every shipped weight at x3 and x4
  python bench/int8_routes.py --models imdn_rtc --scales 3

Per model x scale: PSNR_Y on the search's validation patches (deploy/policy_search/oracle.py,
shipped validation photos) of the converter's int8, the per-layer all-a8w8 model, and what
`--precision int8` now gives (deploy/evaluation/int8_route.py); the converter model's rescale
structure (QUANTIZE ops inside the graph) vs the per-layer one; and the check that the chosen
model is never more than 0.05 dB below per-layer all-a8w8. Writes bench/results/int8_routes.json.
"""
from __future__ import annotations

import collections
import json
import time
from pathlib import Path

from absl import app, flags

import models
from deploy import provenance
from deploy.convert import sources
from deploy.convert.tflite_io import make_interpreter, summarize
from deploy.evaluation import int8_route

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "models (default: all with shipped weights)")
flags.DEFINE_list("scales", ["3", "4"], "scales")
flags.DEFINE_string("out", "bench/results/int8_routes.json", "results JSON")
TOLERANCE_DB = 0.05


def _quantize_ops(tflite: bytes) -> int:
    ops = collections.Counter(o.op for o in summarize(make_interpreter(tflite, delegates=False)).ops)
    return ops.get("QUANTIZE", 0) - 1  # minus the input's


def main(argv):
    del argv
    names = FLAGS.models or sorted({n for n, _ in models.registry.available_weights()})
    rows = []
    for name in names:
        for scale in (int(s) for s in FLAGS.scales):
            try:
                src = sources.load_model(name, scale)
            except Exception as e:  # noqa: BLE001 - a model without shipped weights at this scale
                print(f"{name} x{scale}: skipped ({e})")
                continue
            t = time.perf_counter()
            conv, per = int8_route.routes(src)
            chosen, info = int8_route.choose(src, conv, per)
            per_psnr = info["validation_psnr_y"]["per_layer_a8w8"]
            conv_psnr = info["validation_psnr_y"]["converter"]
            chosen_psnr = per_psnr if info["chosen"] == "per_layer_a8w8" else conv_psnr
            row = {"model": name, "scale": scale, "converter_int8": conv_psnr, "per_layer_a8w8": per_psnr,
                   "chosen": info["chosen"], "precision_int8": chosen_psnr,
                   "below_per_layer_db": round(per_psnr - chosen_psnr, 4),
                   "ok": chosen_psnr >= per_psnr - TOLERANCE_DB,
                   "rescale_ops": {"converter": _quantize_ops(conv.tflite_bytes),
                                   "per_layer_a8w8": _quantize_ops(per.tflite_bytes)},
                   "seconds": round(time.perf_counter() - t, 1)}
            rows.append(provenance.with_provenance(row, validation=info["validation"]))
            print(f"{name:>14} x{scale}  converter {conv_psnr:7.3f}  per-layer {per_psnr:7.3f}  "
                  f"-> {info['chosen']:<15} {'ok' if row['ok'] else 'FAIL'}  rescale ops "
                  f"{row['rescale_ops']['converter']}/{row['rescale_ops']['per_layer_a8w8']}")
            Path(FLAGS.out).write_text(json.dumps(
                {"note": "PSNR_Y (dB) on the search's validation patches (shipped validation photos, "
                         "gradient-energy strata); --precision int8 = the better route, never more than "
                         f"{TOLERANCE_DB} dB below per-layer all-a8w8", "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    app.run(main)
