"""A fitted phone's device-profile JSON (deploy/latency/profiles/*.json): every number with its source.

Why apart from bench/fit_published_profiles.py: fitting (the CV, the form, the a16w8 rule) and writing the
loader's format (units, sources, not-identified rates, MediaTek's derived profile) are separate jobs.
"""
from __future__ import annotations

import math

from bench.published import latency_fit as lf
from bench.published import roofline_fit as rf
from deploy.latency.device_profiles import CONV_CLASSES, ELEMENT_CLASSES

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
            "source": (f"{fit_src}: ONE rate of {_sig(rates['float']['rate']['io'] * rf.IO_BYTES['float'])} GB/s shared by the precisions, each precision's "
                       f"element rate at its I/O bytes per element {rf.IO_BYTES} (AI Hub's models: float32 I/O; uint8 / "
                       "uint16 with --quantize_io: qai-hub-models 0.65.0, qai_hub_models/utils/qai_hub_helpers.py)"
                       if form["io"] == "bytes" and d["float"] else
                       f"a8w8, float: {fit_src} (null: not identified by the fit rows, no I/O cost). a16w8: {i16_src}")}
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
