"""The search as users run it, on every zoo model: wall time, fast-oracle agreement, budgets kept.

  python bench/search.py                                  # every shipped weight at x3 and x4
  python bench/search.py --models espcn,fsrcnn --scales 3

Per model x scale, one session (`tools/search_policy.py`'s set-up, fast oracle) and three searches
at `--budget_db` below a16w8: the budget on the mean (device profile htp_npu), on the worst
validation image (htp_npu), and on the mean priced for a phone (snapdragon_8gen3, the Galaxy S24
profile fitted to AI Hub's published latencies). The first search is timed as one
`tools/search_policy.py` run costs (set-up + sensitivity drops + search + LiteRT confirmation);
the later ones reuse the candidates already measured. For every answer: its LiteRT PSNR_Y and
worst-image loss against a16w8 on the validation patches (what the budget bounds) and on the
default evaluation set (held out: the search never sees it), the fast oracle's agreement with
LiteRT, and the predicted latency. With --exhaustive, every policy of that model is simulated to
find the optimum the htp_npu mean search is judged against. Prints tables; writes
bench/results/search.json and the README's search table.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
from absl import app, flags

import models
import deploy
from deploy import provenance
from deploy._files import replace_marked
from deploy.policy_search import session
from deploy.evaluation.api import tile_overlap
from deploy.convert import sources
from deploy.convert import uniform
from deploy.data import images
from deploy.evaluation.evaluator import evaluate
from deploy.evaluation.runners import KerasRunner, TFLiteRunner
from deploy.latency import cost_model
from deploy.policy_search import api
from deploy.policy_search import solver
from deploy.policy_search.space import NARROW, WIDE
from models.complexity import receptive_radius

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "models (default: all with shipped weights)")
flags.DEFINE_list("scales", ["3", "4"], "scales")
flags.DEFINE_float("budget_db", 0.1, "PSNR budget (dB below a16w8)")
flags.DEFINE_string("phone_profile", "snapdragon_8gen3", "the phone profile of the third search")
flags.DEFINE_list("exhaustive", ["espcn", "fsrcnn"], "models whose every policy is simulated for the optimum")
flags.DEFINE_integer("max_evals", 60, "search candidates after sensitivity")
flags.DEFINE_string("out", None, "JSON results (default bench/results/search.json)")
flags.DEFINE_bool("write_readme", True, "regenerate the README's search table")
flags.DEFINE_bool("progress", False, "tqdm bars on stderr")

REPO = Path(__file__).resolve().parent.parent
HW = uniform.DEFAULT_INPUT_HW
PROFILE = "htp_npu"


def _losses(ref: np.ndarray, got: np.ndarray) -> dict:
    return {"mean_loss_db": round(float(np.mean(ref) - np.mean(got)), 4),
            "worst_loss_db": round(float(np.max(ref - got)), 4)}


def run_model(name: str, scale: int) -> tuple[dict, list[dict]]:
    src = sources.resolve(name, scale)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    s = session.setup(src, deploy.SearchConfig(input_size=HW, device_profile=PROFILE, oracle="fast"))
    setup_s = time.perf_counter() - t0
    samples = images.eval_samples(scale)
    overlap = tile_overlap(receptive_radius(s.prep.model), HW)
    eval_cache: dict = {}

    def eval_images(tflite: bytes) -> np.ndarray:
        r = evaluate(TFLiteRunner(tflite, scale, overlap=overlap), samples, model=name, dataset="default",
                     progress=False)
        return np.asarray([i.psnr_y for i in r.images])

    def eval_assignment(a) -> np.ndarray:
        key = tuple(a[n] for n in s.prep.layers)
        if key not in eval_cache:
            eval_cache[key] = eval_images(s.oracle.build(a)[0])
        return eval_cache[key]

    t = time.perf_counter()
    sens = session.measure_drops(s, progress=FLAGS.progress)  # as the search does first (timed apart)
    drops_s = time.perf_counter() - t
    runs = [(PROFILE, "mean", s), (PROFILE, "worst", s)]
    if FLAGS.phone_profile:
        phone = cost_model.from_device_profile(s.prep, FLAGS.phone_profile, model=name, scale=scale)
        runs.append((FLAGS.phone_profile, "mean", dataclasses.replace(s, cost=phone, profile_label=FLAGS.phone_profile)))
    rows, first_s = [], None
    judge = s.oracle.judge
    for profile, budget_on, sp in runs:
        s.oracle.budget_on = judge.budget_on = budget_on  # the measurements are reused: only the score differs
        sp = dataclasses.replace(sp, config=sp.config.replace(budget_on=budget_on, budget_db=FLAGS.budget_db,
                                                              max_evals=FLAGS.max_evals))
        t = time.perf_counter()
        out = api.search_with_setup(sp, progress=FLAGS.progress)
        search_s = time.perf_counter() - t
        first_s = first_s if first_s is not None else search_s
        rep = dict(out.report)
        a = {n: p for n, p in out.policy.layers}
        val_ref, val_got = judge.image_psnrs(s.oracle.uniform(WIDE)), judge.image_psnrs(a)
        ev_ref, ev_got = eval_assignment(s.oracle.uniform(WIDE)), eval_assignment(a)
        chk = rep.get("litert_check") or {}
        rows.append({
            "model": name, "scale": scale, "profile": profile, "budget_on": budget_on, "budget_db": FLAGS.budget_db,
            "feasible": out.feasible, "a16w8_fraction": rep["a16w8_fraction"],
            "predicted_ms": round(out.predicted_ms, 4), "ratio_to_int8": rep["ratio_to_int8"],
            "ratio_to_a16w8": rep["ratio_to_a16w8"], "candidates": len(out.candidates),
            "skipped_below_min_gain": rep.get("skipped_below_min_gain", 0), "groups": len(s.groups),
            "validation_litert": {"a16w8": round(float(np.mean(val_ref)), 3), "hybrid": round(float(np.mean(val_got)), 3),
                                  **_losses(val_ref, val_got)},
            "evaluation": {"a16w8": round(float(np.mean(ev_ref)), 3), "hybrid": round(float(np.mean(ev_got)), 3),
                           **_losses(ev_ref, ev_got)},
            "within_budget_on_litert": chk.get("within_budget_on_litert"),
            "fallback_to_litert": "fallback" in chk, "decided_on_litert": chk.get("decided_on_litert"),
            "litert_rounds": chk.get("rounds"), "litert_model_s": chk.get("litert_model_s"),
            "search_s": round(search_s, 1), "profile_sha256": _profile_sha(profile),
            "a16w8_groups": [g for g, p in out.policy.layers if p == WIDE]})
    base = {"float": round(float(np.mean(eval_images(s.prep.float_tflite))), 3),
            "int8": round(float(np.mean(eval_assignment(s.oracle.uniform(NARROW)))), 3),
            "a16w8": round(float(np.mean(eval_assignment(s.oracle.uniform(WIDE)))), 3)}
    agree = [r for r in s.oracle.agreement]
    for p in (NARROW,):  # uniform a8w8 as well: the widest fast-vs-LiteRT gap is at int8
        agree.append(s.oracle.compare(s.oracle.uniform(p), f"uniform {p}"))
    speed = {"model": name, "scale": scale, "groups": len(s.groups), "setup_s": round(setup_s, 1),
             "drops_s": round(drops_s, 1), "drops": sens.method["method"], "search_s": round(first_s, 1),
             "total_s": round(setup_s + drops_s + first_s, 1), "val_patches": len(s.oracle.val.lr),
             # other jobs on the machine inflate wall times: the 1-minute load average before and after
             "load_avg": [round(load0, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count(),
             "simulated_ops_fraction": round(s.oracle.sim.ops_run / max(1, s.oracle.sim.ops_total), 3),
             "fast_vs_litert_max_db": round(max(abs(r["diff_db"]) for r in agree), 4),
             "fast_vs_litert_max_image_db": round(max(r["max_image_diff_db"] for r in agree), 4),
             "agreement": agree, "eval": base,
             "provenance": provenance.collect({
                 "calibration": s.oracle.calib.to_json(), "validation": s.oracle.val.to_json(),
                 "evaluation": provenance.dataset_json("default", [(x.name, x.hr) for x in samples])})}
    if name in FLAGS.exhaustive:
        s.oracle.budget_on = judge.budget_on = "mean"
        t = time.perf_counter()
        prob = s.problem([0.0] * len(s.groups))
        truth = solver.exhaustive(s.oracle, prob, progress=False)
        target = float(np.mean(s.oracle.image_psnrs(s.oracle.uniform(WIDE)))) - FLAGS.budget_db
        opt = solver.optimum(truth, target)
        got = rows[0]
        speed["exhaustive"] = {"policies": len(truth), "seconds": round(time.perf_counter() - t, 1),
                               "optimum_ms": round(opt.ms, 4),
                               "gap_to_optimum": round(got["predicted_ms"] / opt.ms - 1, 4)}
    for r in rows:
        r.update(base)
    return speed, rows


SPEED_HEADER = (f"{'model':<22}{'x':>2}{'groups':>7}{'setup':>7}{'drops':>7}{'search':>7}{'total s':>8}"
                f"{'fast-LiteRT dB':>15}")


def _speed_line(r: dict) -> str:
    return (f"{r['model']:<22}{r['scale']:>2}{r['groups']:>7}{r['setup_s']:>7.0f}{r['drops_s']:>7.0f}"
            f"{r['search_s']:>7.0f}{r['total_s']:>8.0f}{r['fast_vs_litert_max_db']:>15.4f}")


def _row_line(r: dict) -> str:
    v, e = r["validation_litert"], r["evaluation"]
    return (f"  {r['profile']:<18}{r['budget_on']:<6} hybrid {e['hybrid']:.2f} (a16w8 {e['a16w8']:.2f}, int8 "
            f"{r['int8']:.2f})  val loss mean/worst {v['mean_loss_db']:+.3f}/{v['worst_loss_db']:+.3f}  eval "
            f"{e['mean_loss_db']:+.3f}/{e['worst_loss_db']:+.3f}  latency/int8 {r['ratio_to_int8']:.2f}  "
            f"{r['predicted_ms']:.3f} ms")


def main(argv):
    del argv
    shipped = set(models.available_weights())
    names = FLAGS.models or sorted({n for n, sc in shipped if sc == 3})
    out = Path(FLAGS.out or REPO / "bench" / "results" / "search.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    todo = {(n, int(sc)) for n in names for sc in FLAGS.scales}
    old = json.loads(out.read_text()) if out.is_file() else {}
    keep = lambda rs: [r for r in rs if (r["model"], r["scale"]) not in todo]  # noqa: E731
    speed, rows = keep(old.get("speed", [])), keep(old.get("rows", []) if "speed" in old else [])
    print(SPEED_HEADER)
    for scale in map(int, FLAGS.scales):
        for name in names:
            if (name, scale) not in shipped:
                print(f"{name} x{scale}: no shipped weights yet; skipped")
                continue
            sp, rs = run_model(name, scale)
            speed.append(sp)
            rows += rs
            print(_speed_line(sp) + "\n" + "\n".join(_row_line(r) for r in rs), flush=True)
            # after every model, so a long run that is cut off keeps what it measured
            out.write_text(json.dumps({"note": "one search session per model (fast oracle, LiteRT-confirmed "
                                       "answers); PSNR_Y on the validation patches (LiteRT) and on the default "
                                       "evaluation set (held out)", "budget_db": FLAGS.budget_db,
                                       "speed": speed, "rows": rows}, indent=2) + "\n")
            if FLAGS.write_readme:
                write_readme(speed, rows)
    print(f"wrote {out}")


BEGIN, END = "<!-- search:begin -->", "<!-- search:end -->"


def write_readme(speed: list[dict], rows: list[dict]) -> None:
    """The README's search tables, regenerated from this run's rows (never typed by hand)."""
    budget = rows[0]["budget_db"] if rows else FLAGS.budget_db
    order = sorted(speed, key=lambda r: (r["scale"], r["model"]))
    t1 = ("| model | groups | set-up s | sensitivity s (drops) | search + LiteRT check s | **total s** | "
          "load avg (before, after) | fast vs LiteRT (max, dB) | exhaustive optimum |\n" + "|---" * 9 + "|\n")
    for r in order:
        ex = r.get("exhaustive")
        ex_s = f"{ex['gap_to_optimum']:+.1%} ({ex['policies']} simulated)" if ex else "–"
        t1 += (f"| {r['model']} x{r['scale']} | {r['groups']} | {r['setup_s']:.0f} | {r['drops_s']:.0f} "
               f"({r.get('drops', 'exact')}) | "
               f"{r['search_s']:.0f} | **{r['total_s']:.0f}** | {r['load_avg'][0]:.1f}, {r['load_avg'][1]:.1f} | "
               f"{r['fast_vs_litert_max_db']:.3f} | {ex_s} |\n")
    t2 = (f"| model | budget on | float | int8 | a16w8 | hybrid | validation loss mean / worst | "
          f"evaluation loss mean / worst | latency / int8 (htp_npu) | a16w8 groups | "
          f"{FLAGS.phone_profile} hybrid ms (/int8) |\n" + "|---" * 11 + "|\n")
    by = {(r["model"], r["scale"], r["profile"], r["budget_on"]): r for r in rows}
    stale = False
    for sp in order:
        for on in ("mean", "worst"):
            r = by.get((sp["model"], sp["scale"], PROFILE, on))
            if r is None:
                continue
            ph = by.get((sp["model"], sp["scale"], FLAGS.phone_profile, "mean")) if on == "mean" else None
            ph_s = f"{ph['predicted_ms']:.3f} ({ph['ratio_to_int8']:.2f})" if ph else "–"
            if ph and ph.get("profile_sha256") != _profile_sha(FLAGS.phone_profile):
                ph_s, stale = ph_s + " †", True
            v, e = r["validation_litert"], r["evaluation"]
            t2 += (f"| {r['model']} x{r['scale']} | {on} | {r['float']:.2f} | {r['int8']:.2f} | {r['a16w8']:.2f} | "
                   f"{e['hybrid']:.2f} | {v['mean_loss_db']:.3f} / {v['worst_loss_db']:.3f} | "
                   f"{e['mean_loss_db']:.3f} / {e['worst_loss_db']:.3f} | {r['ratio_to_int8']:.2f} | "
                   f"{r['a16w8_fraction']:.0%} | {ph_s} |\n")
    body = (f"{BEGIN}\nMeasured by `python bench/search.py` on this 2-core machine (budget {budget} dB below "
            "a16w8; fast oracle, every answer confirmed on LiteRT). Wall time of one `tools/search_policy.py` "
            "run (set-up, sensitivity drops, search, LiteRT confirmation); a load average above the "
            f"{os.cpu_count()} cores means other jobs shared the machine and inflated the time:\n\n" + t1 +
            "\nQuality (PSNR_Y, dB): float, int8 (per-layer all-a8w8), a16w8 and the hybrid on the default "
            "evaluation set, which the search never sees; losses are against a16w8, on the validation "
            "patches (LiteRT, what the budget bounds) and on the evaluation set (how it transfers). "
            f"The last column is a search priced with the `{FLAGS.phone_profile}` profile instead" +
            ("; † = priced with an earlier version of that profile (its file has changed since: rerun the "
             "model to refresh)" if stale else "") + ".\n\n" + t2 + END)
    replace_marked(REPO / "README.md", BEGIN, END, body)


def _profile_sha(name: str) -> str:
    """The profile file's sha256 (12 hex): a row records which version priced it."""
    import hashlib
    path = REPO / "deploy" / "latency" / "profiles" / f"{name}.json"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "?"


if __name__ == "__main__":
    app.run(main)
