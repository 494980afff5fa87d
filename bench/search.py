"""NAWQ-style search on the zoo: searched hybrid vs uniform precisions, and vs the true optimum.

  python bench/search.py                                   # every shipped weight at x3 and x4
  python bench/search.py --models espcn --scales 3 --exhaustive espcn

Per model x scale x device profile x budget (dB below a16w8): PSNR_Y of float, uniform int8 and
a16w8 (per-layer route, same calibration) and the searched hybrid on the default evaluation set
(held out: the search only sees validation photos), the hybrid's predicted latency as a ratio to
int8 and a16w8, the fraction of groups at a16w8, candidates measured and wall time. With
--exhaustive, every policy of that model is measured on the validation set to find the true
optimum the search is judged against. Prints tables; writes bench/results/search.json.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from absl import app, flags

import models
from deploy import provenance
from deploy.convert import uniform as convert
from deploy.data import images as data
from deploy.latency import cost_model as latency
from deploy.policy_search import solver as search
from deploy.commands import search_jobs
from deploy.policy_search import sensitivity
from deploy.convert import sources
from deploy.evaluation.evaluator import evaluate
from deploy.commands.jobs import tile_overlap
from deploy.evaluation.runners import KerasRunner, TFLiteRunner
from deploy.policy_search.space import NARROW, WIDE
from models.complexity import receptive_radius

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "models (default: all with shipped weights)")
flags.DEFINE_list("scales", ["3", "4"], "scales")
flags.DEFINE_enum("oracle", "litert", ["litert", "fast"], "candidates (and --exhaustive truth) measured on LiteRT "
                  "(the published table) or on the fast simulation (solver only: no LiteRT confirmation here; "
                  "tools/search_policy.py confirms)")
flags.DEFINE_list("budgets", ["0.05", "0.1", "0.2"], "PSNR budgets (dB below a16w8)")
flags.DEFINE_list("profiles", ["htp_npu", "nnapi_npu_int16_cpu"], "device profiles")
flags.DEFINE_list("exhaustive", ["espcn", "fsrcnn"], "models to enumerate for the true optimum")
flags.DEFINE_integer("max_evals", 60, "search candidates after sensitivity")
flags.DEFINE_integer("val_images", 5, "validation photos of the quality oracle, 6 patches each (as "
                     "tools/search_policy.py --val_images; fewer makes large models affordable)")
flags.DEFINE_string("out", None, "JSON results (default bench/results/search.json)")
flags.DEFINE_bool("write_readme", True, "regenerate the README's search table")
flags.DEFINE_bool("progress", False, "tqdm bars on stderr for the sensitivity and search steps (long runs)")

REPO = Path(__file__).resolve().parent.parent
HW = convert.DEFAULT_INPUT_HW


def _eval_psnr(runner, samples, name) -> float:
    return round(evaluate(runner, samples, model=name, dataset="default", progress=False).mean["psnr_y"], 3)


def run_model(name: str, scale: int) -> list[dict]:
    src = sources.resolve(name, scale)
    t0 = time.perf_counter()
    s = search_jobs.setup(src, HW, device_profile=FLAGS.profiles[0], val_images=FLAGS.val_images,
                          oracle=FLAGS.oracle)
    setup_s = time.perf_counter() - t0
    samples = data.eval_samples(scale)
    overlap = tile_overlap(receptive_radius(s.prep.model), HW)
    tfl_psnr = lambda tfl: _eval_psnr(TFLiteRunner(tfl, scale, overlap=overlap), samples, name)  # noqa: E731
    eval_cache: dict = {}

    def eval_assignment(a):
        key = tuple(a[n] for n in s.prep.layers)
        if key not in eval_cache:
            eval_cache[key] = tfl_psnr(s.oracle.build(a)[0])
        return eval_cache[key]

    base = {"float": _eval_psnr(KerasRunner(src.model, scale), samples, name),
            "int8": eval_assignment(s.oracle.uniform(NARROW)), "a16w8": eval_assignment(s.oracle.uniform(WIDE))}
    t = time.perf_counter()
    # a search measures the drops only; --sensitivity adds the other direction (timed apart)
    sens = search_jobs.measure_drops(s, progress=FLAGS.progress)
    drops_s = time.perf_counter() - t
    t = time.perf_counter()
    sensitivity.measure(s.oracle, s.groups, s.macs, progress=FLAGS.progress)  # drops come from the cache
    sens_s = drops_s + time.perf_counter() - t
    rows = []
    for profile in FLAGS.profiles:
        cost = latency.from_device_profile(s.prep, profile, model=name, scale=scale)
        sp = dataclasses.replace(s, cost=cost, profile_label=profile)
        prob = sp.problem(sens.drop_db)
        truth = None
        if name in FLAGS.exhaustive:
            t = time.perf_counter()
            truth = search.exhaustive(s.oracle, prob, progress=False)
            truth_s = time.perf_counter() - t
        lat8, lat16 = prob.latency_ms((0,) * prob.n), prob.latency_ms((1,) * prob.n)
        for b in map(float, FLAGS.budgets):
            e0, t = s.oracle.evaluations, time.perf_counter()
            r = search.search(s.oracle, prob, budget_db=b, max_evals=FLAGS.max_evals, progress=FLAGS.progress)
            row = {"model": name, "scale": scale, "profile": profile, "budget_db": b, **base,
                   "val_psnr_int8": round(sens.baseline[NARROW], 3),
                   "hybrid": eval_assignment(r.assignment), "val_psnr_hybrid": round(r.best.psnr, 3),
                   "val_psnr_a16w8": round(r.reference_psnr, 3), "feasible": r.feasible,
                   "ratio_to_int8": round(r.best.ms / lat8, 3), "ratio_to_a16w8": round(r.best.ms / lat16, 3),
                   "predicted_ms": round(r.best.ms, 4), "a16w8_fraction": round(r.a16w8_fraction, 3),
                   "groups": prob.n, "candidates": len(r.history), "val_patches": len(s.oracle.val.lr),
                   "interpreters": s.oracle.workers,
                   "new_models": s.oracle.evaluations - e0,
                   "search_s": round(time.perf_counter() - t, 1),
                   "sensitivity_s": round(sens_s, 1), "drops_s": round(drops_s, 1), "setup_s": round(setup_s, 1),
                   "a16w8_groups": [g.name for g, xi in zip(prob.groups, r.best.x) if xi],
                   "provenance": provenance.collect({
                       "calibration": s.oracle.calib.to_json(), "validation": s.oracle.val.to_json(),
                       "evaluation": provenance.dataset_json("default", [(x.name, x.hr) for x in samples])})}
            if truth is not None:
                opt = search.optimum(truth, r.target_psnr)
                row.update({"optimum_ms": round(opt.ms, 4), "optimum_psnr": round(opt.psnr, 3),
                            "gap_to_optimum": round(r.best.ms / opt.ms - 1, 4),
                            "exhaustive_models": len(truth), "exhaustive_s": round(truth_s, 1)})
            rows.append(row)
            print(_line(row), flush=True)
    return rows


HEADER = (f"{'model':<8}{'x':>2} {'profile':<20}{'budget':>7}{'float':>7}{'int8':>7}{'a16w8':>7}{'hybrid':>7}"
          f"{'/int8':>7}{'/a16':>6}{'a16%':>6}{'cands':>6}{'sec':>6}{'opt gap':>8}")


def _line(r: dict) -> str:
    gap = f"{r['gap_to_optimum']:+.1%}" if "gap_to_optimum" in r else ""
    sec = r["search_s"] + r["setup_s"] + r["drops_s"]  # what one tools/search_policy.py run costs
    return (f"{r['model']:<8}{r['scale']:>2} {r['profile']:<20}{r['budget_db']:>7.2f}{r['float']:>7.2f}"
            f"{r['int8']:>7.2f}{r['a16w8']:>7.2f}{r['hybrid']:>7.2f}{r['ratio_to_int8']:>7.2f}"
            f"{r['ratio_to_a16w8']:>6.2f}{r['a16w8_fraction']:>6.0%}{r['candidates'] + r['groups'] + 1:>6}"
            f"{sec:>6.0f}{gap:>8}")


def main(argv):
    del argv
    shipped = set(models.available_weights())
    names = FLAGS.models or sorted({n for n, s in shipped if s == 3})
    print(HEADER)
    out = Path(FLAGS.out or REPO / "bench" / "results" / "search.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    # rows of models/scales this run does not measure are kept (one table for all runs)
    todo = {(n, int(s)) for n in names for s in FLAGS.scales}
    rows = [r for r in (json.loads(out.read_text())["rows"] if out.is_file() else [])
            if (r["model"], r["scale"]) not in todo]
    for scale in map(int, FLAGS.scales):
        for name in names:
            if (name, scale) not in shipped:
                print(f"{name} x{scale}: no shipped weights yet; skipped")
                continue
            rows += run_model(name, scale)
            # after every model, so a long run that is cut off keeps what it measured
            out.write_text(json.dumps({"note": "PSNR_Y on the default evaluation set (held out from the "
                                       "search); latency predicted by the device profile", "rows": rows},
                                      indent=2) + "\n")
            if FLAGS.write_readme:
                write_readme(rows)
    print(f"wrote {out}")


BEGIN, END = "<!-- search:begin -->", "<!-- search:end -->"


def write_readme(rows: list[dict]) -> None:
    """The README's search table, regenerated from this run's rows (never typed by hand)."""
    head = ("| model | profile | budget dB | float | int8 | a16w8 | hybrid | latency / int8 | / a16w8 | "
            "a16w8 groups | models measured | validation patches | search s | vs exhaustive optimum |\n"
            + "|---" * 14 + "|")
    lines = []
    for r in rows:
        gap = (f"{r['gap_to_optimum']:+.1%} ({r['exhaustive_models']} enumerated)"
               if "gap_to_optimum" in r else "–")
        lines.append(f"| {r['model']} x{r['scale']} | {r['profile']} | {r['budget_db']:.2f} | {r['float']:.2f} | "
                     f"{r['int8']:.2f} | {r['a16w8']:.2f} | {r['hybrid']:.2f} | {r['ratio_to_int8']:.2f} | "
                     f"{r['ratio_to_a16w8']:.2f} | {r['a16w8_fraction']:.0%} | {r['candidates'] + r['groups'] + 1} | "
                     f"{r['val_patches']} | "
                     f"{r['search_s'] + r['setup_s'] + r['drops_s']:.0f} | {gap} |")
    sens = {(r["model"], r["scale"]): r["sensitivity_s"] for r in rows}
    by_interp: dict[int, list[str]] = {}
    for r in rows:
        label = f"{r['model']} x{r['scale']}"
        if label not in by_interp.setdefault(r["interpreters"], []):
            by_interp[r["interpreters"]].append(label)
    interp = "; ".join(f"{n} LiteRT interpreter{'s' if n > 1 else ''} at a time for {', '.join(v)}"
                       for n, v in sorted(by_interp.items()))
    body = (f"{BEGIN}\nMeasured by `python bench/search.py` ({len(rows)} searches). PSNR_Y (dB) on the default "
            "evaluation set, which the search never sees; int8/a16w8 are the per-layer route's uniform models; "
            "the budget is below a16w8 on the validation patches; latency is the device profile's prediction; "
            "'search s' includes set-up and the sensitivity drops on this 2-core machine.\n\n"
            f"{head}\n" + "\n".join(lines) + "\n\nA full two-way `--sensitivity` pass took: "
            + ", ".join(f"{m} x{s} {t:.0f} s" for (m, s), t in sens.items())
            + f". The quality oracle ran {interp}.\n{END}")
    readme = REPO / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    readme.write_text(text[:start] + body + text[end:])


if __name__ == "__main__":
    app.run(main)
