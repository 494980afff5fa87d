"""Fit the phone NPU device profiles on published latencies of non-SR networks; write them.

    python bench/fit_published_profiles.py      (~30 min on 2 cores, from the cached per-op work of
                                                 bench/published/graph_work.py; --reuse_cv: a minute)

What is fitted, on what (issue 27; the split is fixed by bench/published/graphs.py roles):
  - FIT ROWS: every published TFLite-runtime latency (LiteRT, whole model on the HTP) of the
    non-SR networks in bench/published/graphs.py (classifiers at 224-384 px, ShuffleNetV2 x0.5 and MNASNet 0.5
    among them; dense prediction with
    large activations and few channels: DnCNN 256x256, U-Net 640x1280, FCN-ResNet50 520x520,
    DeepLabV3+ MobileNet 513x513, FaceDetLite and FootTrackNet 480x640, PoseNet 513x257, NAFNet
    deblurring 360x640, MediaPipe-Selfie 256x256 (106K: a tiny full-resolution net), AOT-GAN inpainting
    512x512 (float only), LaMa-Dilated, MiDaS small, DDRNet-23-slim; FaceAttribNet 128x128, with PReLU),
    float and w8a8, per phone: Galaxy S24 / S25 / S26, from the qai-hub-models 0.65.0 wheel
    (bench/published/ai_hub_perf_0.65.0.json). NO SR network is in any fit or in the choice of
    the form: the SR rows are the test (bench/latency_published.py).
  - MODEL: bench/published/latency_fit.py, t = I + o_p ops + sum_k work_k / R_kp over conv,
    depthwise and elementwise work, optionally + elementwise activation traffic, + conv/FC weight
    elements, + model I/O elements, each at its own per-precision rate; non-negative least squares
    on relative errors, per phone. The same algebra as a device profile, so each fit is written
    as one (activation_traffic / weight_traffic / io_traffic keys where the form has the term).
  - FORM (channel tiling of convs and elementwise ops; which optional terms; linear or roofline):
    the one with the lowest leave-one-model-out cross-validated median relative error on the fit
    rows of all three phones (a rule on the fit rows alone), among the linear forms
    (bench/published/latency_fit.py: an op's compute and memory times SUMMED) and the roofline
    forms (bench/published/roofline_fit.py: per op max(compute, memory) or its smooth version,
    nonlinear least squares; all 384 of roofline_fit.FORMS, then the best with the compiler's folds and with one I/O byte rate
    shared by the precisions (AI Hub's float32 / uint8 / uint16 model I/O); ~30 min on 2 cores, `--reuse_cv` takes
    their scores from the shipped bench/results/fit_published_profiles.json), each with one start-up
    (per-invoke) cost shared by the precisions or one per precision ("+invoke_per_precision"). A
    roofline form is written as a profile with a "roofline" block (deploy/latency/op_pricing.py prices
    it with the same algebra); a per-precision start-up cost as invoke_overhead_us per precision
    (op_pricing.invoke_ms prices a mixed-precision graph by its ops' precision shares).
  - a16w8: AI Hub publishes no int16 TFLite row. The profile's a16w8 parameters are DERIVED from its
    a8w8 and float ones by a rule with one number (bench/published/int16_fit.py: compute rates / k,
    MAC rates / k, or geometric between int8 and fp16), the number fitted on the QNN-runtime w8a16 rows
    of the fit networks that have them (the same form fitted on the phone's QNN float + w8a8 rows);
    the rule chosen by leave-one-model-out CV on those w8a16 rows (assumed: the HTP's int16 costs are
    the runtime's).
  - A rate the rows leave at zero cost (NNLS on its bound) is NOT IDENTIFIED: it is written as the
    same precision's conv rate (one element or depthwise MAC priced like one dense MAC), and the
    source says so.
  - mediatek_mdla3: MediaTek's MDLA 3.0 peak MAC/cycle ratios int8 : int16 : fp16 = 2048 : 512 : 512
    on the snapdragon_8gen3 absolute scale (an ASSUMPTION: no published MDLA latency is used).
The profile JSON (units, sources) is written by bench/published/profile_json.py.
Writes deploy/latency/profiles/{snapdragon_8gen3,snapdragon_8elite,snapdragon_8elitegen5,
mediatek_mdla3}.json and bench/results/fit_published_profiles.json.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.published import int16_fit as i16  # noqa: E402
from bench.published import latency_fit as lf  # noqa: E402
from bench.published import roofline_fit as rf  # noqa: E402
from bench.published.profile_json import PHONE_NAME, make_profile, mdla_profile  # noqa: E402
from deploy._files import atomic_write  # noqa: E402
from deploy.latency.device_profiles import PROFILE_DIR, from_json  # noqa: E402

PUBLISHED = ROOT / "bench/published/ai_hub_perf_0.65.0.json"
WORK = ROOT / "bench/results/published_graph_work_0.65.0.json"
PREC = {"float": "float", "w8a8": "a8w8", "w8a16": "a16w8"}
def rows_for(published: dict, graphs: dict, runtime: str, phone: str, role: str = "fit") -> list[dict]:
    return [dict(r, precision=PREC[r["precision"]]) for r in published["rows"]
            if r["runtime"] == runtime and r["profile"] == phone and r["model"] in graphs
            and graphs[r["model"]]["role"] == role and r["all_on_npu"]]


#: how many of the best base roofline forms (by the CV) are scored again with each compiler fold (rf.FUSE)
FUSE_TOP = 32
#: how many of the best roofline forms, folded or not, are scored again with one shared I/O byte rate
IO_TOP = 16


def _cv_roofline(published: dict, graphs: dict, name: str) -> dict:
    form = rf.ALL_FORMS[name]
    arrays = {m: rf.op_arrays(g, form) for m, g in graphs.items() if g["role"] == "fit"}
    errs = []
    for phone in PHONE_NAME:
        errs += rf.leave_one_model_out(rows_for(published, graphs, "tflite", phone), arrays, form, ("float", "a8w8"))
    return lf.summary(errs)


def _roofline_scores(published: dict, graphs: dict, names: list[str], cached: dict | None) -> dict:
    """{name: CV summary} of roofline forms: cached where given, else a nonlinear fit per fold (minutes, on
    every core)."""
    todo = [n for n in names if n not in (cached or {})]
    with ProcessPoolExecutor(max(1, min(len(todo), os.cpu_count() or 1))) as pool:
        done = dict(zip(todo, pool.map(_cv_roofline, *zip(*[(published, graphs, n) for n in todo]), chunksize=4))) \
            if todo else {}
    return {n: done[n] if n in done else cached[n] for n in names}


def choose_form(published: dict, graphs: dict, cached: dict | None = None) -> tuple[str, dict]:
    """The form with the lowest median |relative error| of leave-one-model-out predictions over the
    fit rows of all phones (TFLite, float + w8a8), among the linear forms (latency_fit.FORMS) and the
    roofline forms (roofline_fit.FORMS), each with a shared or a per-precision start-up cost, and the
    32 best roofline forms each with the NPU compiler's folds (conv activations; and tile-aligned channel
    concatenations: roofline_fit.FUSE, deploy/latency/htp_fusion.py), and the 16 best roofline forms so far
    each with one I/O byte rate shared by the precisions (roofline_fit.io_bytes_variant). Fit rows only: no SR
    row is read."""
    scores = {}
    for name, form in lf.FORMS.items():
        feats = {m: lf.features(g, form) for m, g in graphs.items() if g["role"] == "fit"}
        errs = []
        for phone in PHONE_NAME:
            errs += lf.leave_one_model_out(rows_for(published, graphs, "tflite", phone), feats, ("float", "a8w8"),
                                           lf.groups_of(form))
        scores[name] = lf.summary(errs)
    scores.update(_roofline_scores(published, graphs, list(rf.FORMS), cached))
    best = sorted(rf.FORMS, key=lambda k: scores[k]["median_abs"])[:FUSE_TOP]
    scores.update(_roofline_scores(published, graphs, [rf.fuse_variant(n, f)[0] for n in best for f in rf.FUSE],
                                   cached))
    best = sorted((n for n in scores if n in rf.ALL_FORMS), key=lambda k: scores[k]["median_abs"])[:IO_TOP]
    scores.update(_roofline_scores(published, graphs, [rf.io_bytes_variant(n)[0] for n in best], cached))
    return min(scores, key=lambda k: scores[k]["median_abs"]), scores


def _int16_tools(form: dict, roof: bool, graphs: dict, models) -> tuple:
    """(fit(rows) -> a8w8 + float params, predict16(derived parameters, model) -> ms, a16w8 layout names)
    in the form's algebra (roofline_fit or latency_fit)."""
    if roof:
        work = {m: rf.op_arrays(graphs[m], form) for m in models}
        lay16 = rf.Layout(form, ("float", "a8w8", "a16w8"))
        return (lambda rows: rf.fit(rows, work, form, ("float", "a8w8")),
                lambda d, m: rf.row_ms(work[m], "a16w8", np.array([d[n] for n in lay16.names]), lay16), lay16.names)
    work = {m: lf.features(graphs[m], form) for m in models}
    cols16 = lf.columns(("float", "a8w8", "a16w8"), lf.groups_of(form))
    return (lambda rows: lf.fit(rows, work, ("float", "a8w8"), lf.groups_of(form)),
            lambda d, m: lf.predict(work[m], "a16w8", {"cols": cols16, "x": [d[c] for c in cols16]}), cols16)


def _theta(mode: str, params: dict, pred, r16: list[dict]) -> float:
    return i16.fit_theta(mode, lambda t: [pred(i16.derive(params, mode, t), r["model"]) for r in r16],
                         [r["ms"] for r in r16])


def int16_cv(published: dict, graphs: dict, form: dict, roof: bool) -> dict:
    """Leave-one-model-out score of every a16w8 rule (int16_fit.MODES) over the QNN w8a16 fit rows of all
    phones: each held-out network out of the QNN float + w8a8 base fit and out of theta's fit."""
    errs = {m: [] for m in i16.MODES}
    for phone in PHONE_NAME:
        rows = rows_for(published, graphs, "qnn_dlc", phone)
        fit, pred, _ = _int16_tools(form, roof, graphs, {r["model"] for r in rows})
        for held in sorted({r["model"] for r in rows if r["precision"] == "a16w8"}):
            train = [r for r in rows if r["model"] != held]
            params = fit([r for r in train if r["precision"] != "a16w8"])
            r16 = [r for r in train if r["precision"] == "a16w8"]
            for mode in i16.MODES:
                d = i16.derive(params, mode, _theta(mode, params, pred, r16))
                errs[mode] += [pred(d, r["model"]) / r["ms"] - 1 for r in rows
                               if r["model"] == held and r["precision"] == "a16w8"]
    return {m: i16.summary(e) for m, e in errs.items()}


def qnn_int16(published: dict, graphs: dict, phone: str, form: dict, roof: bool, mode: str) -> dict:
    """theta of the a16w8 rule: the form fitted on every QNN-runtime float + w8a8 fit row of the phone,
    then theta by least squares on the log errors of its w8a16 rows (one number from ~10 rows)."""
    rows = rows_for(published, graphs, "qnn_dlc", phone)
    fit, pred, _ = _int16_tools(form, roof, graphs, {r["model"] for r in rows})
    params = fit([r for r in rows if r["precision"] != "a16w8"])
    r16 = [r for r in rows if r["precision"] == "a16w8"]
    theta = _theta(mode, params, pred, r16)
    d = i16.derive(params, mode, theta)
    return {"rule": mode, "theta": theta, "models": sorted({r["model"] for r in r16}), "rows": len(r16),
            "w8a16_fit_errors": [round(pred(d, r["model"]) / r["ms"] - 1, 4) for r in r16]}


def with_int16(params: dict, roof: bool, mode: str, theta: float) -> dict:
    """The phone's TFLite fit (a8w8 + float) with its a16w8 parameters derived by the rule; an a16w8
    parameter at the fit's zero-cost bound (or derived from not-identified ones) is NOT IDENTIFIED."""
    d = i16.derive(params, mode, theta)
    ni = set(params["not_identified"])
    if roof:
        names = rf.Layout(params["form"], ("float", "a8w8", "a16w8")).names
        floor = math.exp(rf.LOG_LO + 3.0)
        ni |= {n for n in names if n.endswith(":a16w8") and (d[n] <= floor or (
            n[:-5] + "a8w8" in ni and (mode != "toward_float" or n[:-5] + "float" in ni)))}
        return {**params, "names": names, "x": [d[n] for n in names], "precisions": ["float", "a8w8", "a16w8"],
                "not_identified": sorted(ni)}
    cols = lf.columns(("float", "a8w8", "a16w8"), [c.split(":")[1] for c in params["cols"] if c.endswith(":float")
                                                   and c.startswith("inv_rate")]
                      + (["invoke"] if "invoke_ms:float" in params["cols"] else []))
    return {**params, "cols": cols, "x": [d[c] for c in cols],
            "not_identified": sorted(ni | {c for c in cols if c.endswith(":a16w8") and d[c] <= 0})}


def build(reuse_cv: bool = False) -> tuple[dict, dict]:
    """(result JSON, {profile name: profile JSON}) from the shipped published rows and graph work.
    reuse_cv: the roofline forms' CV scores from the shipped bench/results/fit_published_profiles.json
    (recomputing them takes many minutes; the linear forms' are recomputed)."""
    t0 = time.time()
    published = json.loads(PUBLISHED.read_text())
    graphs = json.loads(WORK.read_text())["graphs"]
    stored = ROOT / "bench/results/fit_published_profiles.json"
    old = json.loads(stored.read_text()) if reuse_cv and stored.is_file() else {}
    chosen, scores = choose_form(published, graphs, old.get("cv_by_form"))
    roof = chosen in rf.ALL_FORMS
    form = rf.ALL_FORMS[chosen] if roof else lf.FORMS[chosen]
    i16_scores = (old["int16_cv"] if old.get("chosen_form") == chosen and old.get("int16_cv")
                  else int16_cv(published, graphs, form, roof))
    mode = min(i16.MODES, key=lambda m: i16_scores[m]["median_abs"])
    fit_graphs = {m: g for m, g in graphs.items() if g["role"] == "fit"}
    feats = {m: (rf.op_arrays(g, form) if roof else lf.features(g, form)) for m, g in fit_graphs.items()}
    profiles, per_phone = {}, {}
    for phone in PHONE_NAME:
        rows = rows_for(published, graphs, "tflite", phone)
        if roof:
            params = rf.fit(rows, feats, form, ("float", "a8w8"))
            errs = rf.rel_errors(rows, feats, params)
        else:
            params = lf.fit(rows, feats, ("float", "a8w8"), lf.groups_of(form))
            errs = lf.rel_errors(rows, feats, params)
        qnn = qnn_int16(published, graphs, phone, form, roof, mode)
        p16 = with_int16(params, roof, mode, qnn["theta"])
        rates = rf.rates(p16) if roof else lf.rates(p16)
        profiles[phone] = make_profile(phone, chosen, rates, qnn, rows, scores[chosen])
        per_phone[phone] = {"rates": rates, "not_identified": p16["not_identified"], "qnn_a16w8": qnn,
                            "fit_rows": [{"model": r["model"], "precision": r["precision"], "published_ms": r["ms"],
                                          "fitted_error": round(e, 4), "source": r["source"]}
                                         for r, e in zip(rows, errs)]}
        conv = {p: rates[p]["rate"].get("conv") or rates[p]["rate"].get("conv_kxk") for p in ("a8w8", "a16w8", "float")}
        print(f"{phone}: {len(rows)} fit rows; conv a8w8 {conv['a8w8']:.0f} / a16w8 {conv['a16w8']:.0f} / float "
              f"{conv['float']:.0f} GMAC/s (a16w8 rule {mode}, theta {qnn['theta']:.3g}); not identified: "
              f"{', '.join(p16['not_identified']) or 'none'}")
    profiles["mediatek_mdla3"] = mdla_profile(profiles["snapdragon_8gen3"])
    for name, prof in profiles.items():
        from_json(prof, name)   # the loader's own checks: every number sourced, every class present
    print(f"form (leave-one-model-out CV on the fit rows): {chosen}; best ten: " + ", ".join(
        f"{k} {100 * scores[k]['median_abs']:.1f} %" for k in sorted(scores, key=lambda k: scores[k]["median_abs"])[:10]))
    print("a16w8 rule (leave-one-model-out CV on the QNN w8a16 fit rows): " + ", ".join(
        f"{m} {100 * i16_scores[m]['median_abs']:.1f} %" for m in i16.MODES) + f" -> {mode}")
    res = {"chosen_form": chosen, "choice_rule": choose_form.__doc__.strip(), "cv_by_form": scores,
           "int16_cv": i16_scores, "int16_rule": mode, "int16_choice_rule": int16_cv.__doc__.strip(), "per_phone": per_phone,
           "wheel_sha256": published["wheel_sha256"], "command": "python bench/fit_published_profiles.py",
           "seconds": round(time.time() - t0, 1)}
    return res, profiles


def main(write: bool = True, reuse_cv: bool = False) -> dict:
    res, profiles = build(reuse_cv)
    if write:
        for name, prof in profiles.items():
            atomic_write(PROFILE_DIR / f"{name}.json", json.dumps(prof, indent=1) + "\n")
        atomic_write(ROOT / "bench/results/fit_published_profiles.json", json.dumps(res, indent=1, default=float) + "\n")
        print(f"wrote {', '.join(profiles)} to {PROFILE_DIR}")
    return res


if __name__ == "__main__":
    main("--nowrite" not in sys.argv, "--reuse_cv" in sys.argv)
