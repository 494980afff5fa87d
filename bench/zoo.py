"""Quality and evaluation speed of every shipped zoo weight; regenerates models/README.md's table.

  python bench/zoo.py                 # all shipped weights
  python bench/zoo.py --models xlsr --scales 3   # re-measure these; keep the other rows
  python bench/zoo.py --benchmarks data_cache/benchmarks   # Set5/Set14/B100/Urban100 (bench/benchmarks.py)
  python bench/zoo.py --card_only     # the card's table rewritten from bench/results/zoo.json

Rows of other pairs are kept from bench/results/zoo.json while their weight file is still the
shipped one; a pair whose weights changed (retrained) is re-measured even when not selected, and
a kept row whose int8 route changed gets its int8 cell and int8 speed measured again.

For each model x scale with weights: PSNR_Y/SSIM_Y of bicubic, float (Keras), int8 (what
`convert.py --precision int8` makes: the better on the validation patches of the converter's and
the per-layer all-a8w8 model, deploy/evaluation/int8_route.py) and a16w8 (TFLiteConverter),
default calibration, fixed 64x64 input, tiled, on the default evaluation set;
then evaluate's throughput on a full-size photo next to bare LiteRT `invoke` on the same model.
Writes bench/results/zoo.json and the table between the markers in models/README.md.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from absl import app, flags

import models
from deploy import provenance
from deploy._files import replace_marked
from deploy.data import calibration
from deploy.convert import sources
from deploy.convert import uniform
from deploy.evaluation import int8_route
from deploy.data import images
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import benchmarks  # noqa: E402
from deploy.data import metrics
from deploy.evaluation.evaluator import evaluate
from deploy.data.imresize import bicubic_lr, modcrop
from deploy.evaluation.integer_interpreter import IntegerInterpreter
from deploy.evaluation.runners import KerasRunner, TFLiteRunner
from deploy.evaluation.api import tile_overlap
from models.complexity import macs_per_lr_pixel, receptive_radius

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "models to run (default: all with shipped weights)")
flags.DEFINE_list("scales", None, "scales to run (default: all shipped)")
flags.DEFINE_list("precisions", ["float", "int8", "a16w8"], "precisions to evaluate")
flags.DEFINE_bool("write_card", True, "update models/README.md")
flags.DEFINE_string("benchmarks", None, "folder with Set5/ Set14/ B100/ Urban100/ (HR images): measure the "
                    "standard test sets instead of the default evaluation set (resumable, cached per cell)")
flags.DEFINE_list("benchmark_sets", list(benchmarks.bm.SETS), "with --benchmarks: which sets")
flags.DEFINE_float("max_minutes", None, "with --benchmarks: start no new cell after this many minutes "
                   "(the rest is shown as pending; rerun to continue)")

flags.DEFINE_bool("card_only", False, "rewrite models/README.md's table from bench/results/zoo.json, measuring "
                  "nothing (after a change of the card's prose or notes)")
flags.DEFINE_enum("a16w8_interpreter", "integer", ["integer", "litert"], "with --benchmarks: what runs the "
                  "a16w8 models: `integer` (deploy/evaluation/integer_interpreter.py: LiteRT's int16 kernels' "
                  "arithmetic on all cores, bit-identical to LiteRT, 11-13x faster for the big models: bench/integer_interpreter.py; tests hold it) or LiteRT's "
                  "own single-threaded reference kernels; each cell records which")

REPO = Path(__file__).resolve().parent.parent
CARD = REPO / "models" / "README.md"
RESULTS = REPO / "bench" / "results" / "zoo.json"
BEGIN, END = "<!-- zoo:begin -->", "<!-- zoo:end -->"


def quality_rows(name: str, scale: int, precisions) -> list[dict]:
    samples = images.eval_samples(scale)
    keras_model = models.build(name, scale, weights=True)
    rows = []
    for precision in precisions:
        t0 = time.time()
        route = {}
        if precision == "float":
            runner = KerasRunner(keras_model, scale)
        elif precision == "int8":
            tfl, route = best_int8(name, scale)
            runner = TFLiteRunner(tfl, scale)
        else:  # the model convert.py writes at this precision (deploy/evaluation/int8_route.py)
            q = int8_route.quantize(sources.resolve(name, scale), precision, input_size=uniform.DEFAULT_INPUT_HW)
            runner = TFLiteRunner(q.tflite_bytes, scale)
        res = evaluate(runner, samples, model=name, dataset="default", progress=False)
        rows.append({"precision": precision, **res.mean, "seconds": round(time.time() - t0, 1), **route})
        if precision == precisions[0]:
            rows.insert(0, {"precision": "bicubic", **res.bicubic, "seconds": 0.0})
    return rows


def best_int8(name: str, scale: int) -> tuple[bytes, dict]:
    """`--precision int8`'s model and which route made it (int8_route.py)."""
    q = int8_route.quantize(sources.resolve(name, scale), "int8", input_size=uniform.DEFAULT_INPUT_HW)
    info = q.report["int8_route"]
    return q.tflite_bytes, {"int8_route": info["chosen"], "int8_validation_psnr_y": info.get("validation_psnr_y")}


def throughput(name: str, scale: int) -> dict:
    """evaluate()'s output MP/s on a full-size photo vs the bare invoke time of its tiles."""
    fixed = models.with_fixed_shape(models.build(name, scale, weights=True), name, scale,
                                    uniform.DEFAULT_INPUT_HW)
    tfl = best_int8(name, scale)[0]
    import skimage.data
    hr = modcrop(skimage.data.astronaut(), scale)
    sample = images.Sample("astronaut_full", hr, bicubic_lr(hr, scale))
    overlap = tile_overlap(receptive_radius(fixed), uniform.DEFAULT_INPUT_HW)  # as evaluate.py does
    runner = TFLiteRunner(tfl, scale, overlap=overlap)
    runner.invoke(sample.lr[:64, :64])  # warm-up
    runner.invocations = 0
    t0 = time.perf_counter()
    res = evaluate(runner, [sample], model=name, dataset="astronaut 512x512", progress=False)
    total = time.perf_counter() - t0  # tiling + metrics + bicubic baseline
    tiles = runner.invocations
    tile = sample.lr[:uniform.DEFAULT_INPUT_HW[0], :uniform.DEFAULT_INPUT_HW[1]]
    t1 = time.perf_counter()
    for _ in range(tiles):
        runner.invoke(tile)
    bare = time.perf_counter() - t1
    out_mp = hr.shape[0] * hr.shape[1] / 1e6
    return {"image": "astronaut 512x512", "tiles": tiles, "overlap": overlap, "output_mp": round(out_mp, 3),
            "eval_mp_per_s": round(out_mp / res.seconds, 2), "bare_invoke_s": round(bare, 3),
            "runner_s": round(res.seconds, 3), "runner_over_bare": round(res.seconds / bare, 3),
            "with_metrics_s": round(total, 3), "psnr_y": round(res.mean["psnr_y"], 2)}


def training_of(name: str, scale: int) -> dict:
    """The recipe recorded beside the weights by tools/train.py."""
    path = models.recipe_path(name, scale)
    recipe = json.loads(path.read_text()) if path.is_file() else {}
    out = {k: recipe.get(k) for k in ("steps", "train_seconds", "train_images", "hardware")}
    if recipe.get("stopped_early"):  # shipped mid-run (tools/train.py --export_checkpoint)
        out["schedule_steps"] = recipe["stopped_early"]["schedule_steps"]
    return out


#: Papers' own Set5 / Set14 PSNR_Y (dB) at each scale: other data and longer training, shown
#: for context only. None: the paper reports no Set5/Set14 figure for that model and scale.
PUBLISHED = {
    "fsrcnn": ("Dong et al. ECCV 2016, Table 4 (91 + General-100 images)",
               {2: (37.00, 32.63), 3: (33.16, 29.43), 4: (30.71, 27.59)}),
    "espcn": ("Shi et al. CVPR 2016 (ImageNet training); Set5 x3 only", {3: (33.13, None)}),
    "edsr_baseline": ("Lim et al. CVPRW 2017, Table 3 (DIV2K)",
                      {2: (37.99, 33.57), 3: (34.37, 30.28), 4: (32.09, 28.58)}),
    "xlsr": ("Ayazoglu CVPRW 2021: reported on DIV2K validation only", {}),
    "abpn": ("Du et al. CVPRW 2021: reported on DIV2K validation only", {}),
    "imdn_rtc": ("Hui et al. ACM MM 2019: the RTC variant is reported on DIV2K only", {}),
}


#: What a reader of the card should know about a model beyond its numbers.
NOTES = {
    "imdn_rtc": "IMDN-RTC is the real-time variant of IMDN (IMDN_RTC in the authors' code; 12 channels, "
                "5 speed modules): "
                "its parameters and MACs are XLSR's (see the table), so it is not one of the large "
                "models and is not expected to beat the small ones clearly. The converter's int8 loses the most "
                "on it of all the zoo (one shared scale across its distilled slices and concatenations; at x2 "
                "below bicubic), so `--precision int8` takes the per-layer all-a8w8 model for it (`int8_route` "
                "in bench/results/zoo.json), and a16w8 keeps its quality: the case per-layer precision is for "
                "(README, 'Find a policy').",
    "edsr_baseline": "EDSR-baseline (1.5 M parameters) is trained here on a 2-core CPU for a few thousand "
                     "updates of 8 small patches (see its recipe); the paper halves its learning rate every "
                     "200,000 updates of 16 48x48 patches on DIV2K. It is far from converged: more training is "
                     "the way to more dB, and the small models' margin to it says little about the architectures. "
                     "Training it to the paper needs a GPU, and none was lent to this project's sessions: the "
                     "standard-benchmark tables below show its gap to the paper (last column).",
    **{n: f"{label}: Qualcomm AI Hub's architecture (models/zoo_aihub.py), trained here from scratch at x4 only "
          "(L1 on bicubic LR, see its recipe); AI Hub ships its own pretrained weights, not these."
       for n, label in (("quicksrnet_small", "QuickSRNet-Small"), ("quicksrnet_medium", "QuickSRNet-Medium"),
                        ("quicksrnet_large", "QuickSRNet-Large"))},
    "sesr_m5": "SESR-M5: Qualcomm AI Hub's architecture in its collapsed inference form (32K parameters; AI Hub "
               "profiles the 343K-parameter expanded training form), trained here directly in that form from a "
               "zero conv_last, at x4 only (models/zoo_aihub.py, see its recipe).",
    "realesrgan_general_x4v3": "Real-ESRGAN-General-x4v3 (SRVGGNetCompact, 1.2 M parameters) is GAN-trained for "
                               "real-world degradations in AI Hub; here it is trained with L1 on bicubic LR for a "
                               "short CPU run at x4 only (see its recipe): a PSNR model, far from converged.",
}


def published(name: str, scale: int) -> str:
    figures = PUBLISHED.get(name, ("", {}))[1].get(scale)
    if not figures:
        return "not reported"
    return " / ".join("–" if v is None else f"{v:.2f}" for v in figures)


def card_table(results: list[dict]) -> str:
    lines = ["| model | scale | params | MACs / output px | bicubic | float | int8 | a16w8 | training | "
             "published Set5 / Set14 (other data) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        q = {row["precision"]: row for row in r["quality"]}
        cell = lambda p: f"{q[p]['psnr_y']:.2f} / {q[p]['ssim_y']:.4f}" if p in q else "-"  # noqa: E731
        t = r.get("training", {})
        of = f" (of a {t['schedule_steps']}-step schedule)" if t.get("schedule_steps") else ""
        train = (f"{t['steps']} steps{of}, {t['train_seconds'] / 60:.0f} min, {t['train_images']} photos, {t['hardware']}"
                 if t.get("steps") else "-")
        lines.append(f"| {r['model']} | x{r['scale']} | {r['params']:,} | {r['macs_per_output_px']:,} | "
                     f"{cell('bicubic')} | {cell('float')} | {cell('int8')} | {cell('a16w8')} | {train} | "
                     f"{published(r['model'], r['scale'])} |")
    sources = "\n".join(f"- {n}: {src}" for n, (src, _) in PUBLISHED.items())
    shown = {r["model"] for r in results}
    notes = "".join(f"\n- {n}: {text}" for n, text in NOTES.items() if n in shown)
    return "\n".join(lines) + (f"\n\nNotes:{notes}" if notes else "") + ("\n\nPublished figures (PSNR_Y dB, the papers' own training data and schedules; "
                               "compare our models with each other, not with these):\n" + sources)


def kept_rows(selected: set[tuple[str, int]]) -> dict[tuple[str, int], dict]:
    """Earlier rows still valid: not selected for re-measuring and measured on today's weights."""
    old = json.loads(RESULTS.read_text())["results"] if RESULTS.is_file() else []
    shipped = {pair: models.weights_path(*pair).name for pair in models.available_weights()}
    return {(r["model"], r["scale"]): r for r in old
            if (r["model"], r["scale"]) not in selected and shipped.get((r["model"], r["scale"])) == r["weights"]}


def int8_route_changed(row: dict) -> bool:
    """A kept row whose int8 cell came from another route than `--precision int8` takes today
    (e.g. a new int8 candidate wins): its int8 cell and int8 speed are stale."""
    q = {x["precision"]: x for x in row["quality"]}
    return "int8" in q and q["int8"].get("int8_route") != int8_route_of(row["model"], row["scale"])


def int8_route_of(name: str, scale: int) -> str:
    """`--precision int8`'s route: the cached decision's name, else decided now (builds the candidates)."""
    src = sources.resolve(name, scale)
    return (int8_route.decided_route(src, input_size=uniform.DEFAULT_INPUT_HW)
            or best_int8(name, scale)[1]["int8_route"])


def refresh_int8(row: dict) -> dict:
    """`row` with its int8 cell and int8 evaluation speed measured again (float and a16w8 kept)."""
    name, scale = row["model"], row["scale"]
    int8 = next(q for q in quality_rows(name, scale, ["int8"]) if q["precision"] == "int8")
    print(f"{name} x{scale}: int8 {int8['psnr_y']:.2f}/{int8['ssim_y']:.4f} ({int8['int8_route']})")
    return {**row, "quality": [int8 if q["precision"] == "int8" else q for q in row["quality"]],
            "throughput_int8": throughput(name, scale)}


def measure(name: str, scale: int) -> dict:
    m = models.build(name, scale, input_shape=(32, 32))
    r = {"model": name, "scale": scale, "params": m.count_params(),
         "macs_per_output_px": round(macs_per_lr_pixel(m) / scale ** 2),
         "weights": models.weights_path(name, scale).name, "training": training_of(name, scale),
         "quality": quality_rows(name, scale, FLAGS.precisions), "throughput_int8": throughput(name, scale),
         "provenance": provenance.collect({
             "calibration": calibration.calibration_set(scale, uniform.DEFAULT_INPUT_HW).to_json(),
             "evaluation": provenance.dataset_json("default", images.default_eval_images())})}
    print(f"\n{name} x{scale}: " + "  ".join(
        f"{q['precision']} {q['psnr_y']:.2f}/{q['ssim_y']:.4f}" for q in r["quality"]))
    t = r["throughput_int8"]
    print(f"  int8 evaluate: {t['eval_mp_per_s']} MP/s output; runner time / bare invoke time "
          f"= {t['runner_over_bare']} ({t['tiles']} tiles of {uniform.DEFAULT_INPUT_HW}, overlap {t['overlap']})")
    return r


def benchmark_runner(name: str, scale: int, precision: str):
    """The runner bench/benchmarks.py evaluates a cell with, built as the default-set rows are."""
    keras_model = models.build(name, scale, weights=True)
    if precision == "float":
        return KerasRunner(keras_model, scale), {}
    fixed = models.with_fixed_shape(keras_model, name, scale, uniform.DEFAULT_INPUT_HW)
    overlap = tile_overlap(receptive_radius(fixed), uniform.DEFAULT_INPUT_HW)  # as evaluate.py does
    if precision == "int8":
        tfl, extra = best_int8(name, scale)
    else:
        cal = calibration.calibration_set(scale, uniform.DEFAULT_INPUT_HW)
        tfl = uniform.convert_uniform(fixed, precision, calib=cal).tflite
        if FLAGS.a16w8_interpreter == "integer":
            runner = TFLiteRunner(tfl, scale, overlap=overlap, workers=1, interpreter_factory=IntegerInterpreter)
            return runner, {"overlap": overlap, "interpreter": "integer"}
        extra = {"interpreter": "litert"}
    return TFLiteRunner(tfl, scale, overlap=overlap), {**extra, "overlap": overlap}


def benchmark_made_by(name: str, scale: int, precision: str) -> dict:
    """What a cached benchmark cell's model must have been made by: int8's chosen route (so a route
    that changes, e.g. a new int8 candidate winning, re-measures that model's int8 cells)."""
    return {"int8_route": int8_route_of(name, scale)} if precision == "int8" else {}


def run_benchmarks(selected: list[tuple[str, int]], shipped: list[tuple[str, int]]) -> None:
    """--benchmarks: the standard sets for the selected shipped weights, cheapest cells first; the
    card and summary list every shipped weight (the others from their cached cells)."""
    every = sorted(shipped)
    macs = {(n, s): macs_per_lr_pixel(models.build(n, s, input_shape=(32, 32))) / s ** 2 for n, s in selected}
    macs.update({pair: 0.0 for pair in every if pair not in macs})  # never measured here
    pairs = [(n, s, models.weights_path(n, s).name) for n, s in every]
    benchmarks.run(FLAGS.benchmarks, pairs, FLAGS.precisions, benchmark_runner, set_names=FLAGS.benchmark_sets,
                   max_minutes=FLAGS.max_minutes, macs=macs, card=CARD if FLAGS.write_card else None,
                   measure_only=set(selected), made_by=benchmark_made_by)


def main(argv):
    del argv
    shipped = list(models.available_weights())
    selected = {(n, s) for n, s in shipped
                if (not FLAGS.models or n in FLAGS.models) and (not FLAGS.scales or str(s) in FLAGS.scales)}
    if not selected:
        raise SystemExit("error: no shipped weights match; train some with tools/train.py")
    if FLAGS.card_only:
        last = json.loads(RESULTS.read_text())
        return write_card(last["results"], last["minutes_last_run"], len(last["measured_last_run"]))
    if FLAGS.benchmarks:
        try:
            return run_benchmarks(sorted(selected), shipped)
        except images.DataError as e:
            raise SystemExit(f"error: {e}") from None
    rows = kept_rows(selected)
    todo = [pair for pair in shipped if pair not in rows or int8_route_changed(rows[pair])]
    started = time.time()
    for name, scale in todo:
        rows[(name, scale)] = refresh_int8(rows[(name, scale)]) if (name, scale) in rows else measure(name, scale)
        # after every model, so a long run that is cut off keeps what it measured
        results = [rows[pair] for pair in shipped if pair in rows]
        minutes = (time.time() - started) / 60
        out = {"results": results, "minutes_last_run": round(minutes, 2),
               "measured_last_run": [f"{n} x{s}" for n, s in todo[:todo.index((name, scale)) + 1]],
               "eval_set": list(images.EVAL_IMAGES), "eval_crop": images.EVAL_CROP,
               "convention": metrics.CONVENTION, "input_hw": list(uniform.DEFAULT_INPUT_HW)}
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")
        if FLAGS.write_card:
            write_card(results, minutes, len(out["measured_last_run"]))
    table = card_table([rows[pair] for pair in shipped])
    print("\n" + table + f"\n\nbench/zoo.py measured {len(todo)} pairs in {(time.time() - started) / 60:.1f} min "
          f"on {platform.processor() or platform.machine()}")


def write_card(results: list[dict], minutes: float, measured: int) -> None:
    speed = "\n".join(f"- {r['model']} x{r['scale']} int8: {r['throughput_int8']['eval_mp_per_s']} MP/s of "
                      f"output in `tools/evaluate.py` (runner / bare invoke = "
                      f"{r['throughput_int8']['runner_over_bare']})" for r in results)
    body = (f"{BEGIN}\nPSNR_Y / SSIM_Y (dB / -) on the default evaluation set ({len(images.EVAL_IMAGES)} photos, "
            f"{images.EVAL_CROP}x{images.EVAL_CROP} HR crops; Y of BT.601, `scale` pixels shaved). int8: what "
            f"`convert.py --precision int8` makes (the best on the validation patches of the converter's, the "
            f"per-layer all-a8w8 with min/max ranges and with MSE-chosen ranges; `int8_route` per row in "
            f"bench/results/zoo.json); a16w8: "
            f"TFLiteConverter; both fixed {uniform.DEFAULT_INPUT_HW[0]}x{uniform.DEFAULT_INPUT_HW[1]} "
            f"LR input, tiled with an overlap of the model's receptive radius (at most a quarter tile).\n\n{card_table(results)}\n\nEvaluation speed (astronaut "
            f"512x512, 2 cores):\n{speed}\n\nGenerated by `python bench/zoo.py` (its last run measured {measured} of "
            f"these rows in {minutes:.1f} min; the others are kept from earlier runs on the same weight files)."
            f"\n{END}")
    if not CARD.is_file():
        CARD.write_text(f"# Model zoo\n\n{BEGIN}\n{END}\n")
    replace_marked(CARD, BEGIN, END, body)


if __name__ == "__main__":
    app.run(main)
