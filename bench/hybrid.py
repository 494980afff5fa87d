"""Hybrid precision on the zoo: uniform vs per-layer vs hand policy (+ QAT), on the eval set.

  python bench/hybrid.py                    # every shipped weight at x3 and x4
  python bench/hybrid.py --models xlsr --scales 3 --qat_steps 300

Per model x scale: PSNR_Y of float (Keras), int8 and a16w8 (TFLiteConverter), per-layer all-a8w8
(AI Edge Quantizer), a hand policy with the first and last layers a16w8, and the same hand policy
after policy-aware QAT; model sizes and int8<->int16 requantize ops. Prints a table and writes
bench/results/hybrid.json.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from absl import app, flags

import models
from deploy import provenance
from deploy.data import calibration
from deploy.convert import uniform
from deploy.data import images
from deploy.convert import per_layer as hybrid
from deploy.convert import quantizer
from deploy.evaluation.evaluator import evaluate
from deploy.convert.policy import Policy
from deploy.evaluation.runners import KerasRunner, TFLiteRunner

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "models (default: all with shipped weights)")
flags.DEFINE_list("scales", ["3", "4"], "scales")
flags.DEFINE_integer("qat_steps", 300, "QAT steps for the hand policy (0: skip QAT)")
flags.DEFINE_integer("qat_batch", 16, "QAT patches per step (EDSR-baseline on a CPU: 8)")
flags.DEFINE_integer("qat_patch", 48, "QAT LR patch side (EDSR-baseline on a CPU: 32, its training patch)")

REPO = Path(__file__).resolve().parent.parent
HW = uniform.DEFAULT_INPUT_HW


def run_one(name: str, scale: int, qat_steps: int) -> dict:
    samples = images.eval_samples(scale)
    psnr = lambda runner: round(evaluate(runner, samples, model=name, dataset="default",  # noqa: E731
                                         progress=False).mean["psnr_y"], 3)
    keras_model = models.build(name, scale, weights=True)
    fixed = models.with_fixed_shape(keras_model, name, scale, HW)
    cal = calibration.calibration_set(scale, HW)
    row = {"model": name, "scale": scale, "float": psnr(KerasRunner(keras_model, scale))}
    for p in ("int8", "a16w8"):
        c = uniform.convert_uniform(fixed, p, calib=cal)
        row[f"{p}_converter"] = psnr(TFLiteRunner(c.tflite, scale))
        row[f"{p}_converter_kib"] = round(c.report["size_bytes"] / 1024, 1)
    prep = hybrid.prepare(fixed)
    qsv = quantizer.calibrate(prep.float_tflite, cal.patches)
    tfl, rep = hybrid.quantize_policy(prep, Policy(name, scale, "a8w8"), cal, qsv=qsv)
    row["a8w8_per_layer"] = psnr(TFLiteRunner(tfl, scale))
    if prep.rewritten:  # is a gap to the converter's int8 the rewritten activations' extra roundings?
        wide_act = Policy(name, scale, "a8w8", tuple((n, "a16w8") for n in prep.rewritten))
        tfl, _ = hybrid.quantize_policy(prep, wide_act, cal, qsv=qsv)
        row["a8w8_rewritten_a16w8"] = psnr(TFLiteRunner(tfl, scale))
    hand = hybrid.hand_policy(prep, name, scale)
    tfl, rep = hybrid.quantize_policy(prep, hand, cal, qsv=qsv)
    row.update({"hand_policy": psnr(TFLiteRunner(tfl, scale)), "hand_layers_a16w8": [n for n, _ in hand.layers],
                "hand_kib": round(rep["size_bytes"] / 1024, 1), "hand_requantize_ops": rep["requantize_ops"]})
    if qat_steps:
        from deploy.experimental import qat
        t0 = time.time()
        res = qat.qat_finetune(keras_model, hand.resolved(prep.layers), steps=qat_steps, scale=scale,
                               batch=FLAGS.qat_batch, patch=FLAGS.qat_patch, progress=False)
        prep_q = hybrid.prepare(models.with_fixed_shape(res.model, name, scale, HW))
        tfl, _ = hybrid.quantize_policy(prep_q, hand, cal)
        row.update({"hand_policy_qat": psnr(TFLiteRunner(tfl, scale)), "qat_steps": qat_steps,
                    "qat_batch": FLAGS.qat_batch, "qat_patch": FLAGS.qat_patch,
                    "qat_seconds": round(time.time() - t0, 1)})
    row["provenance"] = provenance.collect({"calibration": cal.to_json(), "evaluation": provenance.dataset_json(
        "default", [(x.name, x.hr) for x in samples])})
    return row


def table(rows: list[dict]) -> str:
    cols = ["float", "int8_converter", "a16w8_converter", "a8w8_per_layer", "a8w8_rewritten_a16w8",
            "hand_policy", "hand_policy_qat"]
    head = f"{'model':<15}{'x':>2} " + "".join(f"{c:>16}" for c in cols) + f"{'hand KiB':>10}{'requant':>9}"
    lines = [head]
    for r in rows:
        lines.append(f"{r['model']:<15}{r['scale']:>2} " + "".join(
            f"{r[c]:>16.2f}" if c in r else f"{'-':>16}" for c in cols)
            + f"{r['hand_kib']:>10}{r['hand_requantize_ops']:>9}")
    return "\n".join(lines)


def main(argv):
    del argv
    pairs = sorted(((n, s) for n, s in models.available_weights()
                    if str(s) in FLAGS.scales and (not FLAGS.models or n in FLAGS.models)), key=lambda p: (p[1], p[0]))
    if not pairs:
        raise SystemExit("error: no shipped weights for those models/scales")
    t0 = time.time()
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    old = REPO / "bench" / "results" / "hybrid.json"
    # one table for all runs: a row is replaced when its model/scale is measured again, so a run
    # that is cut off keeps the earlier rows of the pairs it did not reach
    rows = json.loads(old.read_text())["rows"] if old.is_file() else []
    for name, scale in pairs:
        row = run_one(name, scale, FLAGS.qat_steps)
        at = next((i for i, r in enumerate(rows) if (r["model"], r["scale"]) == (name, scale)), len(rows))
        rows[at:at + 1] = [row]
        print(table([row]).splitlines()[-1], flush=True)
        # after every model: a long run that is cut off keeps what it measured
        (REPO / "bench" / "results" / "hybrid.json").write_text(json.dumps(
            {"rows": rows, "input_hw": list(HW), "eval_set": list(images.EVAL_IMAGES)}, indent=2) + "\n")
    print("\nPSNR_Y (dB) on the default evaluation set\n" + table(rows))
    print(f"\nbench/hybrid.py took {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    app.run(main)
