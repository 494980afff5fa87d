"""Fit the phone NPU device profiles on published latencies of non-SR networks; write them.

    python bench/fit_published_profiles.py      (~10 min on 2 busy cores, from the cached per-op work of
                                                 bench/published/graph_work.py; --reuse_cv: seconds)

What is fitted, on what (issue 27; the split is fixed by bench/published/graphs.py roles):
  - FIT ROWS: every published TFLite-runtime latency (LiteRT, whole model on the HTP) of the
    non-SR networks in bench/published/graphs.py (classifiers at 224-384 px, ShuffleNetV2 x0.5 and MNASNet 0.5
    among them; dense prediction with
    large activations and few channels: DnCNN 256x256, U-Net 640x1280, FCN-ResNet50 520x520,
    DeepLabV3+ MobileNet 513x513, FaceDetLite and FootTrackNet 480x640, PoseNet 513x257, NAFNet
    deblurring 360x640, MediaPipe-Selfie 256x256 (106K: a tiny full-resolution net), AOT-GAN inpainting
    512x512 (float only)), float and w8a8, per phone: Galaxy S24 / S25 / S26, from the qai-hub-models 0.65.0 wheel
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
    nonlinear least squares; all 384 of roofline_fit.FORMS; ~15 min on 2 busy cores, `--reuse_cv` takes
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
Writes deploy/latency/profiles/{snapdragon_8gen3,snapdragon_8elite,snapdragon_8elitegen5,
mediatek_mdla3}.json and bench/results/fit_published_profiles.json.
"""
from __future__ import annotations

import json
import math
import os
import statistics
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
from deploy._files import atomic_write  # noqa: E402
from deploy.latency.device_profiles import CONV_CLASSES, ELEMENT_CLASSES, PROFILE_DIR, from_json  # noqa: E402

PUBLISHED = ROOT / "bench/published/ai_hub_perf_0.65.0.json"
WORK = ROOT / "bench/results/published_graph_work_0.65.0.json"
PREC = {"float": "float", "w8a8": "a8w8", "w8a16": "a16w8"}
PHONE_NAME = {"snapdragon_8gen3": "Samsung Galaxy S24 (Snapdragon 8 Gen 3, SM8650, HTP v75)",
              "snapdragon_8elite": "Samsung Galaxy S25 (Snapdragon 8 Elite, SM8750, HTP v79)",
              "snapdragon_8elitegen5": "Samsung Galaxy S26 (Snapdragon 8 Elite Gen 5, SM8850, HTP v81)"}
CLASS_GROUP = {**{c: lf.GROUP.get(c, "elementwise") for c in CONV_CLASSES}, **{c: "elementwise" for c in ELEMENT_CLASSES}}
TILE_SRC = ("Qualcomm AI Engine Direct SDK (80-63442-10), HTP guidelines: 'Activation data is typically stored with a "
            "fixed granularity of channels ... rounded to the next multiple of 32' (https://docs.qualcomm.com/doc/80-63442-10/"
            "topic/htp_guidelines_low_depth_activations.html); which ops are priced on tiles is the model form chosen by "
            "bench/fit_published_profiles.py (cross-validated on the fit rows)")
FUSE_SRC = ("ops an NPU compiler folds into a neighbour cost nothing of their own (deploy/latency/htp_fusion.py): 'act', a "
            "conv's ReLU / ReLU6 / clip run as one conv (ONNX Runtime QNN EP, 'Support Conv + Clip/Relu fusion', "
            "https://github.com/microsoft/onnxruntime/pull/21537); 'concat', a channel concatenation of whole 32-channel tiles "
            "written in place (a hypothesis: no vendor page). Which folds: the model form chosen by "
            "bench/fit_published_profiles.py (cross-validated on the fit rows)")
MDLA = ("MediaTek 'Platform-Aware Model Design Guide' (NeuroPilot / Neuron SDK), table 'MDLA version mapping': "
        "MDLA 3.0 int8 2048 MAC/cycle, int16 512 MAC/cycle, FP16 512 MAC/cycle "
        "(https://mediatek.gitlab.io/aiot/doc/aiot-dev-guide/master/sw/yocto/ml-guide/neuron-sdk/neuron-dev-flow/"
        "model_design_guide.html)")


def rows_for(published: dict, graphs: dict, runtime: str, phone: str, role: str = "fit") -> list[dict]:
    return [dict(r, precision=PREC[r["precision"]]) for r in published["rows"]
            if r["runtime"] == runtime and r["profile"] == phone and r["model"] in graphs
            and graphs[r["model"]]["role"] == role and r["all_on_npu"]]


#: how many of the best base roofline forms (by the CV) are scored again with each compiler fold (rf.FUSE)
FUSE_TOP = 32


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
    concatenations: roofline_fit.FUSE, deploy/latency/htp_fusion.py). Fit rows only: no SR row is read."""
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
    return min(scores, key=lambda k: scores[k]["median_abs"]), scores


def _sig(x: float, n: int = 3) -> float:
    return float(f"{x:.{n}g}")


def make_profile(phone: str, form_name: str, rates: dict, qnn: dict, fit_rows: list[dict], cv: dict) -> dict:
    """A device profile JSON from one phone's fitted rates (latency_fit.rates / roofline_fit.rates, a16w8
    derived by its QNN-fitted rule: with_int16)."""
    roof = form_name in rf.ALL_FORMS
    form = rf.ALL_FORMS[form_name] if roof else lf.FORMS[form_name]
    models = sorted({r["model"] for r in fit_rows})
    how = (f"roofline least squares on {'relative' if form.get('objective') == 'rel' else 'log'} errors, "
           "bench/published/roofline_fit.py") if roof else "NNLS, relative errors"
    fit_src = (f"FITTED by bench/fit_published_profiles.py ({how}) on {len(fit_rows)} published TFLite-runtime "
               f"latencies of {len(models)} non-SR networks on the {PHONE_NAME[phone]} ({', '.join(models)}; float and w8a8; "
               f"qai-hub-models 0.65.0 wheel, qai_hub_models/models/<m>/perf.yaml, rows in bench/published/"
               f"ai_hub_perf_0.65.0.json); model form '{form_name}' ({form['form']}), chosen by leave-one-model-out CV on the "
               f"fit rows (median error {100 * cv['median_abs']:.0f} %); no SR network in the fit")
    rule = {"compute_x_k": f"every compute rate (conv, depthwise, elementwise) = the a8w8 rate / {qnn['theta']:.3g}",
            "convs_x_k": f"the MAC rates (convs, depthwise) = the a8w8 rate / {qnn['theta']:.3g}, the rest as a8w8",
            "toward_float": f"every parameter geometric between a8w8 and float, a8w8^(1-l) float^l with l = "
                            f"{qnn['theta']:.3g}, int8 weights as a8w8"}[qnn["rule"]]
    i16_src = (f"DERIVED from this profile's a8w8 and float values by the rule '{qnn['rule']}' ({rule}; I/O and activation "
               "traffic at 2 bytes per int16 element), its number fitted on the QNN-runtime w8a16 rows of "
               f"{', '.join(qnn['models'])} on this phone (the same form fitted on the phone's QNN float + w8a8 fit rows); "
               "the rule chosen by leave-one-model-out CV on the w8a16 fit rows of all phones (bench/published/int16_fit.py); "
               "AI Hub publishes no int16 TFLite row: assumed the HTP's int16 costs are the same under LiteRT")
    P3 = ("a8w8", "a16w8", "float")
    traffic = {} if not form.get("traffic") else {"activation_traffic": {
        "channels": 32, **{p: (_sig(rates[p]["rate"]["traffic"]) if rates[p]["rate"].get("traffic") else None)
                           for p in P3},
        "unit": "Gelem/s of activation elements read + written by each elementwise (non-conv) op, channels rounded up to 32",
        "source": f"a8w8, float: {fit_src} (null: not identified by the fit rows, no traffic cost). a16w8: {i16_src}"}}
    if roof:
        mem = {p: (_sig(rates[p]["mem_GBps"]) if rates[p].get("mem_GBps") else None) for p in P3}
        traffic["roofline"] = {
            "combine": "max" if form["k"] == math.inf else "k2", "channels": 32, "memory_GBps": mem,
            "activation_bytes": dict(rf.ACT_BYTES),
            **({"weight_bytes": dict(rf.WEIGHT_BYTES)} if form["weights"] == "in_max" else {}),
            "unit": "memory_GBps: GB/s of the bytes each op moves (its activation elements read + written, channels rounded "
                    "up to 32, x activation_bytes" + (" + its weight elements x weight_bytes" if form["weights"] == "in_max"
                                                       else "") + "); each op costs comb(work / rate, bytes / memory_GBps) "
                    "+ op overhead (deploy/latency/op_pricing.py)",
            "source": f"memory_GBps a8w8, float: {fit_src} (null: not identified by the fit rows, no memory term). a16w8: "
                      f"{i16_src}. Bytes per "
                      "element: fp16 activations and weights for float on the HTP, int8 for a8w8, int16 activations + int8 "
                      "weights for a16w8 (the precisions' definitions)"}
    if form.get("weights") in (True, "separate"):
        w = {p: (_sig(rates[p]["rate"]["weights"]) if rates[p]["rate"].get("weights") else None) for p in P3}
        traffic["weight_traffic"] = {
            **w, "unit": "Gelem/s of conv / FC weight elements (fetched once per inference)",
            "source": f"a8w8, float: {fit_src} (null: not identified by the fit rows, no weight cost). a16w8: the a8w8 rate "
                      "(the same int8 weights; every rule keeps it)"}
    if form.get("io"):
        d = {p: (_sig(rates[p]["rate"]["io"]) if rates[p]["rate"].get("io") else None) for p in P3}
        traffic["io_traffic"] = {
            **d,
            "unit": "Gelem/s of model input + output elements, at the precision of the layer reading / writing them",
            "source": f"a8w8, float: {fit_src} (null: not identified by the fit rows, no I/O cost). a16w8: {i16_src}"}
    ops = {}
    for klass, group in CLASS_GROUP.items():
        if roof and form["split"]:
            group = rf.SPLIT_GROUP.get(klass, "elementwise")
        entry, notes = {"unit": "GMAC/s" if klass in CONV_CLASSES else "Gelem/s"}, []
        for p in P3:
            r = rates[p]["rate"].get(group)
            if r is None:
                r = rates[p]["rate"].get("conv") or rates[p]["rate"]["conv_kxk"]
                notes.append(f"{p} NOT IDENTIFIED by the fit rows (zero cost at the fit's bound): priced like one {p} conv MAC")
            entry[p] = _sig(r)
        entry["source"] = f"a8w8, float: {fit_src}{'; ' + '; '.join(notes) if notes else ''}. a16w8: {i16_src}"
        ops[klass] = entry
    op8, op16, opf = rates["a8w8"]["op_us"], rates["a16w8"]["op_us"], rates["float"]["op_us"]
    tile = {} if form["convs"] == "none" and not form["elementwise_tiled"] else {"channel_tile": {
        "channels": 32, "convs": form["convs"], "elementwise": form["elementwise_tiled"], "source": TILE_SRC}}
    fusion = {"fusion": {"kinds": list(rf.fused_kinds(form)), "channels": 32, "source": FUSE_SRC}} if form.get("fuse") else {}
    return {
        **tile,
        **traffic,
        **fusion,
        "name": phone,
        "description": f"LiteRT with the whole model on the Hexagon HTP of a {PHONE_NAME[phone]}; rates fitted on Qualcomm AI Hub's "
                       "published whole-model TFLite latencies of non-SR networks (bench/fit_published_profiles.py), held to its "
                       "SR networks by bench/latency_published.py.",
        "accelerator": {"name": "Hexagon HTP via LiteRT (QNN delegate / AOT compiled)", "precisions": ["a8w8", "a16w8", "float"],
                        "source": "AI Hub's fit rows run every layer on the NPU (perf.yaml layer_counts npu == total; rows "
                                  "with CPU layers are not used); int16 activations run on the HTP (DESIGN.md: 16-bit HTP "
                                  "kernels compile offline)"},
        "ops": ops,
        "op_overhead_us": {"a8w8": _sig(op8, 2), "a16w8": _sig(op16, 2), "float": _sig(opf, 2),
                           "source": f"a8w8, float: {fit_src}; a16w8: {i16_src}"},
        "invoke_overhead_us": ({"a8w8": _sig(rates["invoke_us"], 2), "source": fit_src} if "invoke_us" in rates else {
            **{p: _sig(rates[p]["invoke_us"]) for p in P3},
            "source": f"a8w8, float: {fit_src} (one start-up cost per precision; a mixed-precision graph pays the mean "
                      f"weighted by its ops' precisions: deploy/latency/op_pricing.invoke_ms). a16w8: {i16_src}"}),
        "requantize": {"ns_per_element": _sig(1.0 / ops["quantize"]["a8w8"], 2),
                       "source": "one int8<->int16 requantize pass = one element at the a8w8 quantize-class rate (1 / rate)"},
        "partition_switch": {"us": 0, "source": "0: a8w8, a16w8 and float all run on the HTP, so a precision boundary is no "
                                                "delegate boundary"},
        "int16": {"rule": qnn["rule"], "theta": _sig(qnn["theta"]), "source": i16_src},
    }


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


def mdla_profile(base: dict) -> dict:
    ops = {}
    for klass, e in base["ops"].items():
        r8 = e["a8w8"]
        ops[klass] = {"a8w8": r8, "a16w8": _sig(r8 * 512 / 2048), "float": _sig(r8 * 512 / 2048), "unit": e["unit"],
                      "source": f"a16w8 and float (FP16) = a8w8 x 512/2048, the MDLA 3.0 peak MAC/cycle ratios: {MDLA}. "
                                "a8w8: ASSUMPTION, no published MDLA latency used: the snapdragon_8gen3 fitted a8w8 rate "
                                "(a contemporary flagship NPU), so only the precision ratios are sourced"}
    same = "ASSUMPTION: snapdragon_8gen3's fitted value (no published MediaTek figure)"
    return {
        **({"channel_tile": base["channel_tile"]} if "channel_tile" in base else {}),
        **({"activation_traffic": {**base["activation_traffic"], "source": "ASSUMPTION: snapdragon_8gen3's fitted "
                                   "activation traffic rates (no published MediaTek figure)"}}
           if "activation_traffic" in base else {}),
        **{k: {**base[k], "source": f"ASSUMPTION: snapdragon_8gen3's fitted {k} rates (no published MediaTek figure)"}
           for k in ("weight_traffic", "io_traffic", "roofline", "fusion") if k in base},
        "name": "mediatek_mdla3",
        "description": "A MediaTek APU with MDLA 3.0 (Dimensity 9000 class) running int8, int16 and FP16 on the MDLA. Only the "
                       "int8 : int16 : FP16 throughput ratios are published; the absolute scale is snapdragon_8gen3's (assumption).",
        "accelerator": {"name": "MediaTek MDLA 3.0 (Neuron)", "precisions": ["a8w8", "a16w8", "float"],
                        "source": f"{MDLA}; data type matrix: FP16, INT8 and SYM INT16 are native ('HW') on MDLA 3.0"},
        "ops": ops,
        "op_overhead_us": {**{k: base["op_overhead_us"][k] for k in ("a8w8", "a16w8", "float")}, "source": same},
        "invoke_overhead_us": {**{k: v for k, v in base["invoke_overhead_us"].items() if k != "source"}, "source": same},
        "requantize": {"ns_per_element": base["requantize"]["ns_per_element"], "source": same},
        "partition_switch": {"us": 0, "source": "0: all three precisions run on the MDLA (no delegate boundary)"},
    }


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
