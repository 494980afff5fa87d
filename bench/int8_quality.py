"""How close int8 gets to float per zoo weight: the converter, per-layer min/max, and each PTQ option.

  python bench/int8_quality.py                                   # every shipped weight
  python bench/int8_quality.py --models fsrcnn,espcn,xlsr,imdn_rtc --scales 3
  python bench/int8_quality.py --write_readme_only               # table from the results file
  python bench/int8_quality.py --models fsrcnn --scales 3 --ptq= --qat_steps 300   # + the QAT column

Per model x scale x variant: PSNR_Y of the float TFLite, the TFLiteConverter's int8
(`deploy.quantize(src, "int8", ...)` with `int8_route="converter"` semantics: convert.api), the
per-layer all-a8w8 model with global min/max calibration, and the per-layer model with each
`--ptq` option (deploy/convert/ptq: MSE / percentile activation ranges, output clipped to the
image range, CLE, bias correction, AdaRound, and combinations), and with `--qat_steps N` the
per-layer all-a8w8 model after N steps of QAT (deploy/experimental/lsq.py: learned ranges and
weights, distilled from the float model on the training photos, exported through the same route);
on the default evaluation set (tiled at the
64x64 input, as deployed) and on the search's validation patches (shipped validation photos,
deploy/policy_search/oracle.py), split by gradient-energy stratum into the smooth half (the 3
smoothest of each photo's 6 patches) and the detailed half. Calibration: the shipped calibration
photos (8, 4 patches each), never the evaluation or validation photos.

Resumable: every finished row is written to --out at once, and rows already there (same model,
scale, variant) are skipped, so a killed run continues where it stopped (a `qat` row of another
`--qat_steps` is measured again and replaced). The README's int8 PTQ
table is regenerated from --out.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
from absl import app, flags

import models
from deploy import provenance
from deploy.convert import api as convert_api
from deploy.convert import per_layer, quantizer, sources
from deploy.convert.policy import Policy
from deploy.convert.ptq import PtqOptions
from deploy.data import calibration
from deploy.data import images
from deploy.data.metrics import mse_y, psnr_from_mse
from deploy.evaluation.evaluator import evaluate
from deploy.evaluation.runners import TFLiteRunner
from deploy.policy_search import oracle

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "models (default: all with shipped weights)")
flags.DEFINE_list("scales", None, "scales (default: every shipped one)")
flags.DEFINE_list("ptq", ["mse", "p99.99", "minmax+clip", "cle", "bc", "ar", "cle+clip", "cle+clip+bc",
                          "mse+clip+cle+bc", "p99.99+clip+cle+bc"],
                  "PTQ option labels to measure (deploy.convert.ptq.PtqOptions)")
flags.DEFINE_integer("qat_steps", 0, "QAT steps for the `qat` variant (0: no QAT variant)")
flags.DEFINE_integer("qat_batch", 8, "QAT patches per step")
flags.DEFINE_string("qat_init", "minmax", "where QAT's int8 ranges start: minmax, mse or p<percent>")
flags.DEFINE_string("out", "bench/results/int8_quality.json", "results JSON (also the resume cache)")
flags.DEFINE_bool("write_readme", True, "regenerate the README's int8 PTQ table")
flags.DEFINE_bool("write_readme_only", False, "only regenerate the README table from --out")
flags.DEFINE_bool("rerun", False, "measure the selected variants again even where rows exist")

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BEGIN, END = "<!-- int8_quality:begin -->", "<!-- int8_quality:end -->"
HW = convert_api.DEFAULT_INPUT_HW
PATCHES_PER_IMAGE = 6  # oracle.validation_set's default: strata 0..5, smooth to detailed


def _val_psnrs(sr, val: oracle.ValidationSet, scale: int) -> dict[str, float]:
    """Mean over photos of PSNR_Y (patch MSE pooled per photo): all, smooth half, detailed half."""
    rank = [k - val.image_of.index(val.image_of[k]) for k in range(len(val.lr))]
    out = {}
    for label, keep in (("val", lambda r: True), ("val_smooth", lambda r: r < PATCHES_PER_IMAGE // 2),
                        ("val_detailed", lambda r: r >= PATCHES_PER_IMAGE // 2)):
        per = []
        for i in range(len(val.images)):
            idx = [k for k in range(len(val.lr)) if val.image_of[k] == i and keep(rank[k])]
            per.append(psnr_from_mse(float(np.mean([mse_y(sr[k], val.hr[k], crop_border=scale) for k in idx]))))
        out[label] = round(float(np.mean(per)), 4)
    return out


def _measure(tflite: bytes, src, samples, val, scale: int) -> dict:
    runner = TFLiteRunner(tflite, scale, convention=src.convention)
    res = evaluate(runner, samples, model=src.name, dataset="default", progress=False)
    return {"eval": round(res.mean["psnr_y"], 4), **_val_psnrs(runner.map(val.lr), val, scale)}


def _variants(ptq_labels, qat_steps: int = 0):
    return (["float", "converter_int8", "per_layer_minmax"] + [f"ptq:{PtqOptions.parse(p).label}" for p in ptq_labels]
            + (["qat"] if qat_steps else []))


def _load(out: Path) -> dict:
    return json.loads(out.read_text()) if out.is_file() else {"rows": []}


def _save(out: Path, doc: dict) -> None:
    doc["note"] = ("PSNR_Y (dB). eval: default evaluation set (deploy/data/images.py, tiled at the 64x64 "
                   "input); val / val_smooth / val_detailed: the search's validation patches, all / the 3 "
                   "smoothest of each photo's 6 gradient-energy strata / the 3 most detailed. Calibration: "
                   "shipped calibration photos. ptq:<label>: per-layer all-a8w8 with deploy.convert.ptq options.")
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(out)


def run_model(name: str, scale: int, variants: list[str], doc: dict, out: Path) -> None:
    weights = models.weights_path(name, scale).name
    # a row of other weights (retrained, issue 32) is stale: all of that model's rows go
    doc["rows"] = [r for r in doc["rows"] if not (r["model"] == name and r["scale"] == scale
                                                   and r.get("weights", weights) != weights)]
    done = {r["variant"] for r in doc["rows"] if r["model"] == name and r["scale"] == scale
            and not (r["variant"] == "qat" and (r.get("qat", {}).get("steps"), r.get("qat", {}).get("init", "minmax"))
                     != (FLAGS.qat_steps, FLAGS.qat_init))
            and not FLAGS.rerun}
    todo = [v for v in variants if v not in done]
    if not todo:
        return
    src = sources.load_model(name, scale)
    prep = per_layer.prepare_source(src, HW)
    cal = calibration.calibration_set(scale, HW, convention=src.convention)
    qsv = quantizer.calibrate(prep.float_tflite, cal.patches)
    policy = Policy.for_layers(src.name, scale, "a8w8", prep.layers, "float32")
    samples, val = images.eval_samples(scale), oracle.validation_set(scale, HW)
    for variant in todo:
        t = time.perf_counter()
        extra = {}
        if variant == "float":
            tfl = prep.float_tflite
        elif variant == "converter_int8":
            tfl = convert_api.quantize(src, "int8", input_size=HW).tflite_bytes
        elif variant == "qat":
            from deploy.experimental import lsq
            settings = lsq.QatSettings(steps=FLAGS.qat_steps, batch=FLAGS.qat_batch, init=FLAGS.qat_init)
            draw = lsq.training_patches(scale, HW, src.convention, batch=settings.batch, seed=settings.seed)
            learned = lsq.learn(prep, policy, cal.patches, draw, settings, peak=src.convention.peak, progress=True)
            tfl, rep = per_layer.quantize_policy(prep, policy, cal, value_peak=src.convention.peak,
                                                 ptq=PtqOptions(learned=learned))
            extra = {"qat": dict(learned.report)}
        else:
            ptq = variant.split(":", 1)[1] if variant.startswith("ptq:") else None
            tfl, rep = per_layer.quantize_policy(prep, policy, cal, qsv, value_peak=src.convention.peak, ptq=ptq)
            extra = {"ptq": rep["ptq"]} if "ptq" in rep else {}
        row = {"model": name, "scale": scale, "variant": variant, "weights": weights,
               **_measure(tfl, src, samples, val, scale),
               "seconds": round(time.perf_counter() - t, 1), **extra}
        doc["rows"] = [r for r in doc["rows"] if (r["model"], r["scale"], r["variant"]) != (name, scale, variant)]
        doc["rows"].append(row)  # a QAT row of another length is replaced
        doc.setdefault("provenance", provenance.with_provenance(
            {}, validation=val.to_json(), calibration=cal.to_json(),
            evaluation=provenance.dataset_json("default", images.default_eval_images())))
        _save(out, doc)
        print(f"{name:>14} x{scale} {variant:<28} eval {row['eval']:7.3f}  val {row['val']:7.3f}  "
              f"smooth {row['val_smooth']:7.3f}  detailed {row['val_detailed']:7.3f}  ({row['seconds']} s)", flush=True)


def best_int8(rows: list[dict]) -> dict:
    """The int8 variant (converter, per-layer min/max or a PTQ option) with the best validation
    PSNR: chosen on the validation patches, never on the evaluation set (that is the test)."""
    cands = [r for r in rows if r["variant"] != "float"]
    return max(cands, key=lambda r: r["val"]) if cands else {}


#: issue 29's targets: best int8 within this much of float (dB) on the evaluation set / smooth half
TARGET_EVAL_DB, TARGET_SMOOTH_DB = 0.15, 0.3


def table(doc: dict) -> str:
    rows = doc["rows"]
    keys = sorted({(r["model"], r["scale"]) for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    ptqs = [v for v in variants if v.startswith("ptq:")] + [v for v in variants if v == "qat"]
    head = ("| model | float eval / smooth | converter int8 | per-layer min/max | "
            + " | ".join(v[4:] if v.startswith("ptq:") else "QAT" for v in ptqs)
            + " | best int8 on validation: eval / smooth | targets met |")
    lines = [head, "|" + "---|" * (4 + len(ptqs) + 2)]
    for m, s in keys:
        by = {r["variant"]: r for r in rows if r["model"] == m and r["scale"] == s}
        f = by.get("float")
        if not f:
            continue

        def cell(v: str) -> str:
            r = by.get(v)
            return "–" if r is None else f"{r['eval'] - f['eval']:+.2f} / {r['val_smooth'] - f['val_smooth']:+.2f}"
        best = best_int8(list(by.values()))
        if best:
            d_eval, d_smooth = best["eval"] - f["eval"], best["val_smooth"] - f["val_smooth"]
            tail = (f"{best['variant'].replace('ptq:', '')}: {d_eval:+.2f} / {d_smooth:+.2f} | "
                    f"{'yes' if d_eval >= -TARGET_EVAL_DB else 'no'} / {'yes' if d_smooth >= -TARGET_SMOOTH_DB else 'no'}")
        else:
            tail = "– | –"
        lines.append(f"| {m} x{s} | {f['eval']:.2f} / {f['val_smooth']:.2f} | {cell('converter_int8')} | "
                     f"{cell('per_layer_minmax')} | " + " | ".join(cell(v) for v in ptqs) + f" | {tail} |")
    return "\n".join(lines)


def summary(doc: dict) -> str:
    """One line: how many weights meet each of issue 29's targets with their best int8."""
    keys = sorted({(r["model"], r["scale"]) for r in doc["rows"]})
    n = ok_eval = ok_smooth = 0
    for m, s in keys:
        by = {r["variant"]: r for r in doc["rows"] if r["model"] == m and r["scale"] == s}
        best = best_int8(list(by.values()))
        if "float" not in by or not best:
            continue
        n += 1
        ok_eval += best["eval"] - by["float"]["eval"] >= -TARGET_EVAL_DB
        ok_smooth += best["val_smooth"] - by["float"]["val_smooth"] >= -TARGET_SMOOTH_DB
    return (f"Best int8 within {TARGET_EVAL_DB} dB of float on the evaluation set: {ok_eval} of {n} weights; "
            f"within {TARGET_SMOOTH_DB} dB on the validation smooth half: {ok_smooth} of {n}.")


def write_readme(doc: dict) -> None:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"README has no {BEGIN} ... {END} block; table not written")
        return
    body = (f"{BEGIN}\nMeasured by `python bench/int8_quality.py` (`bench/results/int8_quality.json`). Cells: "
            "PSNR_Y change against float (dB) on the default evaluation set / on the validation patches' "
            "smooth half; options: `mse` / `p99.99` activation ranges, `clip` output grid limited to the "
            "image range, `cle` cross-layer equalization, `bc` empirical bias correction, `ar` AdaRound, QAT: learned ranges and weights "
            "distilled from float (deploy/experimental/lsq.py; steps in the results file). "
            "Best int8: the variant with the best PSNR_Y on all validation patches; targets (issue 29): "
            f"within {TARGET_EVAL_DB} dB of float on the evaluation set / {TARGET_SMOOTH_DB} dB on the smooth "
            "half; – = not measured.\n\n"
            f"{table(doc)}\n\n{summary(doc)}\n{END}")
    README.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S))


def main(argv):
    del argv
    out = Path(FLAGS.out)
    doc = _load(out)
    if not FLAGS.write_readme_only:
        names = FLAGS.models or sorted(models.MODELS)
        shipped = set(models.registry.available_weights())
        scales = [int(s) for s in FLAGS.scales] if FLAGS.scales else sorted({s for _, s in shipped})
        for name in names:
            for scale in scales:
                if (name, scale) in shipped:
                    run_model(name, scale, _variants(FLAGS.ptq, FLAGS.qat_steps), doc, out)
    if FLAGS.write_readme or FLAGS.write_readme_only:
        write_readme(doc)


if __name__ == "__main__":
    app.run(main)
