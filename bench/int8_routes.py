"""Which int8 is better per zoo model: the TFLite converter's, per-layer all-a8w8 with min/max
ranges, or per-layer all-a8w8 with MSE-chosen ranges?

  python bench/int8_routes.py                      # every shipped weight at x3 and x4
  python bench/int8_routes.py --models imdn_rtc --scales 3

Per model x scale: PSNR_Y on the search's validation patches (deploy/policy_search/oracle.py,
shipped validation photos) of every int8 candidate (deploy/evaluation/int8_route.ROUTES) and what
`--precision int8` now gives; each model's rescale structure (QUANTIZE ops inside the graph); and
the check that the chosen model is never more than 0.05 dB below any candidate. Writes bench/results/int8_routes.json.
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
            candidates = int8_route.routes(src)
            chosen, info = int8_route.choose(src, candidates)
            psnr = info["validation_psnr_y"]
            chosen_psnr = psnr[info["chosen"]]
            row = {"model": name, "scale": scale, "validation_psnr_y": psnr, "chosen": info["chosen"],
                   "precision_int8": chosen_psnr, "below_best_db": round(max(psnr.values()) - chosen_psnr, 4),
                   "ok": chosen_psnr >= max(psnr.values()) - TOLERANCE_DB,
                   "rescale_ops": {r: _quantize_ops(q.tflite_bytes) for r, q in candidates.items()},
                   "seconds": round(time.perf_counter() - t, 1)}
            rows.append(provenance.with_provenance(row, validation=info["validation"]))
            print(f"{name:>14} x{scale}  " + "  ".join(f"{r} {v:7.3f}" for r, v in psnr.items())
                  + f"  -> {info['chosen']:<18} {'ok' if row['ok'] else 'FAIL'}  rescale ops "
                  + "/".join(str(v) for v in row["rescale_ops"].values()))
            Path(FLAGS.out).write_text(json.dumps(
                {"note": "PSNR_Y (dB) on the search's validation patches (shipped validation photos, "
                         "gradient-energy strata); --precision int8 = the best candidate, never more than "
                         f"{TOLERANCE_DB} dB below any", "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    app.run(main)
