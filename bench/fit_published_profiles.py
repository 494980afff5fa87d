"""Fit the phone NPU device profiles on published latencies of standard CNNs; write them.

    python bench/fit_published_profiles.py      (~20 min on 2 cores, from the cached per-op work of
                                                 bench/published/graph_work.py; --reuse_cv: seconds)

What is fitted, on what (issue 27; the split is fixed by bench/published/graphs.py roles):
  - FIT ROWS: every published TFLite-runtime latency (LiteRT, whole model on the HTP) of the
    non-SR networks in bench/published/graphs.py (classifiers at 224-380 px; dense prediction with
    large activations and few channels: DnCNN 256x256, U-Net 640x1280, FCN-ResNet50 520x520,
    DeepLabV3+ MobileNet 513x513, FaceDetLite and FootTrackNet 480x640, PoseNet 513x257, NAFNet
    deblurring 360x640), float and w8a8, per phone: Galaxy S24 / S25 / S26, from the qai-hub-models 0.65.0 wheel
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
    nonlinear least squares; ~20 min on 2 cores, `--reuse_cv` takes their scores from the
    shipped bench/results/fit_published_profiles.json). A roofline form is written as a profile
    with a "roofline" block (deploy/latency/op_pricing.py prices it with the same algebra).
  - a16w8: AI Hub publishes no int16 TFLite row. The same form is fitted on the QNN-runtime rows
    (float, w8a8, w8a16) of the fit CNNs that have w8a16 (ConvNeXt-Tiny, DenseNet-121,
    EfficientNet-B4, MobileNetV2); the profile's a16w8 rates are its TFLite a8w8 rates / that
    fit's a8w8 / a16w8 conv-rate ratio (assumed: the HTP's int16 cost ratio is the runtime's).
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
MDLA = ("MediaTek 'Platform-Aware Model Design Guide' (NeuroPilot / Neuron SDK), table 'MDLA version mapping': "
        "MDLA 3.0 int8 2048 MAC/cycle, int16 512 MAC/cycle, FP16 512 MAC/cycle "
        "(https://mediatek.gitlab.io/aiot/doc/aiot-dev-guide/master/sw/yocto/ml-guide/neuron-sdk/neuron-dev-flow/"
        "model_design_guide.html)")


def rows_for(published: dict, graphs: dict, runtime: str, phone: str, role: str = "fit") -> list[dict]:
    return [dict(r, precision=PREC[r["precision"]]) for r in published["rows"]
            if r["runtime"] == runtime and r["profile"] == phone and r["model"] in graphs
            and graphs[r["model"]]["role"] == role and r["all_on_npu"]]


def _cv_roofline(published: dict, graphs: dict, name: str) -> dict:
    form = rf.FORMS[name]
    arrays = {m: rf.op_arrays(g, form) for m, g in graphs.items() if g["role"] == "fit"}
    errs = []
    for phone in PHONE_NAME:
        errs += rf.leave_one_model_out(rows_for(published, graphs, "tflite", phone), arrays, form, ("float", "a8w8"))
    return lf.summary(errs)


def choose_form(published: dict, graphs: dict, cached: dict | None = None) -> tuple[str, dict]:
    """The form with the lowest median |relative error| of leave-one-model-out predictions over the
    fit rows of all phones (TFLite, float + w8a8), among the linear forms (latency_fit.FORMS) and the
    roofline forms (roofline_fit.FORMS). Fit rows only: no SR row is read."""
    scores = {}
    for name, form in lf.FORMS.items():
        feats = {m: lf.features(g, form) for m, g in graphs.items() if g["role"] == "fit"}
        errs = []
        for phone in PHONE_NAME:
            errs += lf.leave_one_model_out(rows_for(published, graphs, "tflite", phone), feats, ("float", "a8w8"),
                                           lf.groups_of(form))
        scores[name] = lf.summary(errs)
    todo = [n for n in rf.FORMS if n not in (cached or {})]   # a nonlinear fit per fold: minutes, on every core
    with ProcessPoolExecutor(max(1, min(len(todo), os.cpu_count() or 1))) as pool:
        done = dict(zip(todo, pool.map(_cv_roofline, *zip(*[(published, graphs, n) for n in todo])))) if todo else {}
    for name in rf.FORMS:
        scores[name] = done[name] if name in done else cached[name]
    return min(scores, key=lambda k: scores[k]["median_abs"]), scores


def _sig(x: float, n: int = 3) -> float:
    return float(f"{x:.{n}g}")


def make_profile(phone: str, form_name: str, rates: dict, qnn: dict, fit_rows: list[dict], cv: dict) -> dict:
    """A device profile JSON from one phone's fitted rates (latency_fit.rates) and its QNN a16w8 ratio."""
    roof = form_name in rf.FORMS
    form = rf.FORMS[form_name] if roof else lf.FORMS[form_name]
    models = sorted({r["model"] for r in fit_rows})
    how = (f"roofline least squares on {'relative' if form.get('objective') == 'rel' else 'log'} errors, "
           "bench/published/roofline_fit.py") if roof else "NNLS, relative errors"
    fit_src = (f"FITTED by bench/fit_published_profiles.py ({how}) on {len(fit_rows)} published TFLite-runtime "
               f"latencies of {len(models)} standard CNNs on the {PHONE_NAME[phone]} ({', '.join(models)}; float and w8a8; "
               f"qai-hub-models 0.65.0 wheel, qai_hub_models/models/<m>/perf.yaml, rows in bench/published/"
               f"ai_hub_perf_0.65.0.json); model form '{form_name}' ({form['form']}), chosen by leave-one-model-out CV on the "
               f"fit rows (median error {100 * cv['median_abs']:.0f} %); no SR network in the fit")
    ratio, ratio_src = qnn["ratio"], (
        f"a8w8 rate / {qnn['ratio']:.3g}: the int16/int8 compute factor fitted on the QNN-runtime w8a16 rows of "
        f"{', '.join(qnn['models'])} on this phone (the same form fitted on the phone's QNN float + w8a8 fit rows, w8a16 = "
        "its overheads + factor x its a8w8 compute; AI Hub publishes no int16 TFLite row); assumed: the HTP's int16/int8 "
        "cost ratio is the same under LiteRT")
    traffic = {} if not form.get("traffic") else {"activation_traffic": {
        "channels": 32, **{p: (_sig(rates[p]["rate"]["traffic"]) if rates[p]["rate"].get("traffic") else None)
                           for p in ("a8w8", "float")},
        "a16w8": _sig(rates["a8w8"]["rate"]["traffic"] / 2) if rates["a8w8"]["rate"].get("traffic") else None,
        "unit": "Gelem/s of activation elements read + written by each elementwise (non-conv) op, channels rounded up to 32",
        "source": f"a8w8, float: {fit_src} (null: not identified by the fit rows, no traffic cost). a16w8: the a8w8 rate / 2 "
                  "(ASSUMPTION: int16 activations move 2 bytes per element where int8 move 1)"}}
    if roof:
        mem = {p: (_sig(rates[p]["mem_GBps"]) if rates[p].get("mem_GBps") else None) for p in ("a8w8", "float")}
        traffic["roofline"] = {
            "combine": "max" if form["k"] == math.inf else "k2", "channels": 32, "memory_GBps": {**mem, "a16w8": mem["a8w8"]},
            "activation_bytes": dict(rf.ACT_BYTES),
            **({"weight_bytes": dict(rf.WEIGHT_BYTES)} if form["weights"] == "in_max" else {}),
            "unit": "memory_GBps: GB/s of the bytes each op moves (its activation elements read + written, channels rounded "
                    "up to 32, x activation_bytes" + (" + its weight elements x weight_bytes" if form["weights"] == "in_max"
                                                       else "") + "); each op costs comb(work / rate, bytes / memory_GBps) "
                    "+ op overhead (deploy/latency/op_pricing.py)",
            "source": f"memory_GBps a8w8, float: {fit_src} (null: not identified by the fit rows, no memory term). a16w8: the "
                      "a8w8 rate (the same memory; int16 activations move 2 bytes per element: activation_bytes). Bytes per "
                      "element: fp16 activations and weights for float on the HTP, int8 for a8w8, int16 activations + int8 "
                      "weights for a16w8 (the precisions' definitions)"}
    if form.get("weights") in (True, "separate"):
        w = {p: (_sig(rates[p]["rate"]["weights"]) if rates[p]["rate"].get("weights") else None) for p in ("a8w8", "float")}
        traffic["weight_traffic"] = {
            **w, "a16w8": w["a8w8"], "unit": "Gelem/s of conv / FC weight elements (fetched once per inference)",
            "source": f"a8w8, float: {fit_src} (null: not identified by the fit rows, no weight cost). a16w8: the a8w8 rate "
                      "(the same int8 weights)"}
    if form.get("io"):
        d = {p: (_sig(rates[p]["rate"]["io"]) if rates[p]["rate"].get("io") else None) for p in ("a8w8", "float")}
        traffic["io_traffic"] = {
            **d, "a16w8": _sig(d["a8w8"] / 2) if d["a8w8"] else None,
            "unit": "Gelem/s of model input + output elements, at the precision of the layer reading / writing them",
            "source": f"a8w8, float: {fit_src} (null: not identified by the fit rows, no I/O cost). a16w8: the a8w8 rate / 2 "
                      "(ASSUMPTION: 2 bytes per element where int8 moves 1)"}
    ops = {}
    for klass, group in CLASS_GROUP.items():
        if roof and form["split"]:
            group = rf.SPLIT_GROUP.get(klass, "elementwise")
        entry, notes = {"unit": "GMAC/s" if klass in CONV_CLASSES else "Gelem/s"}, []
        for p in ("a8w8", "float"):
            r = rates[p]["rate"].get(group)
            if r is None:
                r = rates[p]["rate"].get("conv") or rates[p]["rate"]["conv_kxk"]
                notes.append(f"{p} NOT IDENTIFIED by the fit rows (zero cost at the fit's bound): priced like one {p} conv MAC")
            entry[p] = _sig(r)
        entry["a16w8"] = _sig(entry["a8w8"] / ratio)
        entry["source"] = f"a8w8, float: {fit_src}{'; ' + '; '.join(notes) if notes else ''}. a16w8: {ratio_src}"
        ops[klass] = entry
    op8, opf = rates["a8w8"]["op_us"], rates["float"]["op_us"]
    tile = {} if form["convs"] == "none" and not form["elementwise_tiled"] else {"channel_tile": {
        "channels": 32, "convs": form["convs"], "elementwise": form["elementwise_tiled"], "source": TILE_SRC}}
    return {
        **tile,
        **traffic,
        "name": phone,
        "description": f"LiteRT with the whole model on the Hexagon HTP of a {PHONE_NAME[phone]}; rates fitted on Qualcomm AI Hub's "
                       "published whole-model TFLite latencies of standard CNNs (bench/fit_published_profiles.py), held to its "
                       "SR networks by bench/latency_published.py.",
        "accelerator": {"name": "Hexagon HTP via LiteRT (QNN delegate / AOT compiled)", "precisions": ["a8w8", "a16w8", "float"],
                        "source": "AI Hub's fit rows run every layer on the NPU (perf.yaml layer_counts npu == total; rows "
                                  "with CPU layers are not used); int16 activations run on the HTP (DESIGN.md: 16-bit HTP "
                                  "kernels compile offline)"},
        "ops": ops,
        "op_overhead_us": {"a8w8": _sig(op8, 2), "a16w8": _sig(op8, 2), "float": _sig(opf, 2),
                           "source": f"{fit_src}; a16w8: the a8w8 value (the QNN fit does not separate them)"},
        "invoke_overhead_us": {"a8w8": _sig(rates["invoke_us"], 2), "source": fit_src},
        "requantize": {"ns_per_element": _sig(1.0 / ops["quantize"]["a8w8"], 2),
                       "source": "one int8<->int16 requantize pass = one element at the a8w8 quantize-class rate (1 / rate)"},
        "partition_switch": {"us": 0, "source": "0: a8w8, a16w8 and float all run on the HTP, so a precision boundary is no "
                                                "delegate boundary"},
        "int16_ratio": {"used": _sig(ratio), "source": ratio_src},
    }


def qnn_ratio(published: dict, graphs: dict, phone: str, form: dict) -> dict:
    """k: how much more an int16-activation model's compute costs than its int8 one. The form is
    fitted on every QNN-runtime float + w8a8 fit row of the phone; then the w8a16 rows (the fit CNNs
    that have them) are priced as overheads + k x the a8w8 compute, k by least squares on relative
    errors (one number from 4 rows, not 4 rates)."""
    rows = rows_for(published, graphs, "qnn_dlc", phone)
    feats = {m: lf.features(graphs[m], form) for m in {r["model"] for r in rows}}
    params = lf.fit([r for r in rows if r["precision"] != "a16w8"], feats, ("float", "a8w8"), lf.groups_of(form))
    r16 = [r for r in rows if r["precision"] == "a16w8"]
    fixed, compute = [], []
    for r in r16:
        row = lf.design_row(feats[r["model"]], "a8w8", params["cols"]) * params["x"]
        over = sum(v for c, v in zip(params["cols"], row) if not c.startswith("inv_rate"))
        fixed.append(over / r["ms"])
        compute.append((sum(row) - over) / r["ms"])
    k = sum(c * (1 - f) for c, f in zip(compute, fixed)) / sum(c * c for c in compute)
    errs = [f + k * c - 1 for f, c in zip(fixed, compute)]
    return {"ratio": max(1.0, k), "fitted_k": k, "models": sorted({r["model"] for r in r16}), "rows": len(r16),
            "w8a16_fit_errors": [round(e, 4) for e in errs]}


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
           for k in ("weight_traffic", "io_traffic", "roofline") if k in base},
        "name": "mediatek_mdla3",
        "description": "A MediaTek APU with MDLA 3.0 (Dimensity 9000 class) running int8, int16 and FP16 on the MDLA. Only the "
                       "int8 : int16 : FP16 throughput ratios are published; the absolute scale is snapdragon_8gen3's (assumption).",
        "accelerator": {"name": "MediaTek MDLA 3.0 (Neuron)", "precisions": ["a8w8", "a16w8", "float"],
                        "source": f"{MDLA}; data type matrix: FP16, INT8 and SYM INT16 are native ('HW') on MDLA 3.0"},
        "ops": ops,
        "op_overhead_us": {**{k: base["op_overhead_us"][k] for k in ("a8w8", "a16w8", "float")}, "source": same},
        "invoke_overhead_us": {"a8w8": base["invoke_overhead_us"]["a8w8"], "source": same},
        "requantize": {"ns_per_element": base["requantize"]["ns_per_element"], "source": same},
        "partition_switch": {"us": 0, "source": "0: all three precisions run on the MDLA (no delegate boundary)"},
    }


def roofline_qnn_ratio(published: dict, graphs: dict, phone: str, form: dict) -> dict:
    """qnn_ratio for a roofline form: the form fitted on the phone's QNN float + w8a8 fit rows, then the
    w8a16 rows priced with the a8w8 parameters, compute x k and int16 activations (2 bytes, io at half
    the a8w8 element rate); k by least squares on log errors (one number)."""
    from scipy.optimize import minimize_scalar
    rows = rows_for(published, graphs, "qnn_dlc", phone)
    arrays = {m: rf.op_arrays(graphs[m], form) for m in {r["model"] for r in rows}}
    params = rf.fit([r for r in rows if r["precision"] != "a16w8"], arrays, form, ("float", "a8w8"))
    lay8, lay16 = rf.Layout(form, ("float", "a8w8")), rf.Layout(form, ("float", "a8w8", "a16w8"))
    r16 = [r for r in rows if r["precision"] == "a16w8"]

    def x16(k: float) -> list:
        x = dict(zip(lay8.names, params["x"]))
        for n in lay16.names:
            if n.endswith(":a16w8"):
                base = x[n[:-len("a16w8")] + "a8w8"]
                x[n] = base * (k if n.startswith("inv_rate:") and ":io:" not in n and ":weights:" not in n
                               else 2.0 if ":io:" in n else 1.0)
        return [x[n] for n in lay16.names]

    def errs(k: float) -> list[float]:
        p16 = {"names": lay16.names, "x": x16(k), "form": form, "precisions": list(lay16.precisions)}
        return rf.rel_errors(r16, arrays, p16)

    k = float(minimize_scalar(lambda k: sum(math.log1p(e) ** 2 for e in errs(k)), bounds=(0.5, 10.0),
                              method="bounded", options={"xatol": 1e-6}).x)
    return {"ratio": max(1.0, k), "fitted_k": k, "models": sorted({r["model"] for r in r16}), "rows": len(r16),
            "w8a16_fit_errors": [round(e, 4) for e in errs(k)]}


def build(reuse_cv: bool = False) -> tuple[dict, dict]:
    """(result JSON, {profile name: profile JSON}) from the shipped published rows and graph work.
    reuse_cv: the roofline forms' CV scores from the shipped bench/results/fit_published_profiles.json
    (recomputing them takes many minutes; the linear forms' are recomputed)."""
    t0 = time.time()
    published = json.loads(PUBLISHED.read_text())
    graphs = json.loads(WORK.read_text())["graphs"]
    stored = ROOT / "bench/results/fit_published_profiles.json"
    cached = json.loads(stored.read_text())["cv_by_form"] if reuse_cv and stored.is_file() else None
    chosen, scores = choose_form(published, graphs, cached)
    roof = chosen in rf.FORMS
    form = rf.FORMS[chosen] if roof else lf.FORMS[chosen]
    fit_graphs = {m: g for m, g in graphs.items() if g["role"] == "fit"}
    feats = {m: (rf.op_arrays(g, form) if roof else lf.features(g, form)) for m, g in fit_graphs.items()}
    profiles, per_phone = {}, {}
    for phone in PHONE_NAME:
        rows = rows_for(published, graphs, "tflite", phone)
        if roof:
            params = rf.fit(rows, feats, form, ("float", "a8w8"))
            rates, qnn = rf.rates(params), roofline_qnn_ratio(published, graphs, phone, form)
            errs = rf.rel_errors(rows, feats, params)
        else:
            params = lf.fit(rows, feats, ("float", "a8w8"), lf.groups_of(form))
            rates, qnn = lf.rates(params), qnn_ratio(published, graphs, phone, form)
            errs = lf.rel_errors(rows, feats, params)
        profiles[phone] = make_profile(phone, chosen, rates, qnn, rows, scores[chosen])
        per_phone[phone] = {"rates": rates, "not_identified": params["not_identified"], "qnn_a16w8": qnn,
                            "fit_rows": [{"model": r["model"], "precision": r["precision"], "published_ms": r["ms"],
                                          "fitted_error": round(e, 4), "source": r["source"]}
                                         for r, e in zip(rows, errs)]}
        conv = {p: rates[p]["rate"].get("conv") or rates[p]["rate"].get("conv_kxk") for p in ("a8w8", "float")}
        print(f"{phone}: {len(rows)} fit rows; conv a8w8 {conv['a8w8']:.0f} / float "
              f"{conv['float']:.0f} GMAC/s, a8w8/a16w8 {qnn['ratio']:.2f}; not identified: "
              f"{', '.join(params['not_identified']) or 'none'}")
    profiles["mediatek_mdla3"] = mdla_profile(profiles["snapdragon_8gen3"])
    for name, prof in profiles.items():
        from_json(prof, name)   # the loader's own checks: every number sourced, every class present
    print(f"form (leave-one-model-out CV on the fit rows): {chosen}; best ten: " + ", ".join(
        f"{k} {100 * scores[k]['median_abs']:.1f} %" for k in sorted(scores, key=lambda k: scores[k]["median_abs"])[:10]))
    res = {"chosen_form": chosen, "choice_rule": choose_form.__doc__.strip(), "cv_by_form": scores, "per_phone": per_phone,
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
