"""Fit the phone NPU device profiles on published Qualcomm AI Hub latencies; write them.

    python bench/fit_published_profiles.py            (~2 min on 2 cores: converts 2 graphs)

What is fitted, on what (issue 17; the split is fixed in advance, never tuned on the rest):
  - FIT ROWS: XLSR and QuickSRNetSmall, float and w8a8, Galaxy S24 (Snapdragon 8 Gen 3), TFLite
    runtime (LiteRT with the model on the HTP): 4 published whole-model times.
  - PARAMETERS (4): the a8w8 and float rates R8, Rf, one per-op overhead o (both precisions:
    dispatch/sync per op does not depend on the dtype) and one per-invoke overhead I.
    Model: t(model, p) = I + (ops + 2 I/O quantizes) * o + work_p / R_p, with work = MACs of the
    convs + output elements of every other op (one element priced like one MAC: elementwise ops
    are not separately identifiable from whole-model times) and the I/O quantizes at R8.
    Work and op counts come from OUR float TFLite graph of the architecture AI Hub measured
    (models.zoo_aihub.AIHUB_GRAPHS at 128x128, x4), exactly as `deploy.latency` prices a model.
  - Loss: squared log error (relative), parameters in log space inside a box (rates 10..1e5
    GMAC/s, overheads 0.1..1e4 us); a parameter that ends on the box is reported as NOT identified.
  - a16w8 rates: R8 / the median published w8a16/w8a8 latency ratio of the dense high-resolution
    conv nets on the same phone (QNN runtime; AI Hub publishes no int16 TFLite figure); the spread
    over those nets and the all-conv-net median are kept as the stated uncertainty.
  - Other phones: the S24 rates and per-op overhead x Qualcomm's announced NPU speed-up, the
    per-invoke overhead x the announced CPU speed-up (press figures, URLs below), never the
    phones' own rows (those are held out for bench/latency_published.py).
  - mediatek_mdla3: MediaTek's MDLA 3.0 peak MAC/cycle ratios int8 : int16 : fp16 = 2048 : 512 : 512
    on the snapdragon_8gen3 absolute scale (an ASSUMPTION: no published MDLA latency is used).
Writes deploy/latency/profiles/{snapdragon_8gen3,snapdragon_8elite,snapdragon_8elitegen5,
mediatek_mdla3}.json and bench/results/fit_published_profiles.json (fit, residuals, features).
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy._files import atomic_write  # noqa: E402
from deploy.latency.device_profiles import CONV_CLASSES, ELEMENT_CLASSES, PROFILE_DIR, from_json  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("published", str(ROOT / "bench/published/ai_hub_perf.json"), "published rows")
flags.DEFINE_string("work_cache", str(ROOT / "bench/results/published_graph_work.json"),
                    "per-op work of the AI Hub graphs (recomputed when missing or --recompute)")
flags.DEFINE_bool("recompute", False, "re-convert the graphs even if the work cache exists")
flags.DEFINE_bool("write", True, "write the profiles")

PUB = "quic/ai-hub-models @ 52c080d245d2d20c634459208ff2548ce10b3c9f"
FIT_MODELS = ("xlsr", "quicksrnetsmall")
FIT_PHONE = "snapdragon_8gen3"
RUNTIME = "tflite"
PREC = {"w8a8": "a8w8", "float": "float"}
TILE = 32   # HTP activation channel tile (deploy/latency/htp_tiling.py, Qualcomm HTP guidelines)
TILE_SRC = ("Qualcomm AI Engine Direct SDK (80-63442-10), HTP guidelines: 'Activation data is typically stored with a "
            "fixed granularity of channels ... the channels are typically rounded to the next multiple of 32' "
            "(https://docs.qualcomm.com/doc/80-63442-10/topic/htp_guidelines_low_depth_activations.html) and 'Round up the "
            "number of channels in a layer to a multiple of 32' (.../htp_guidelines_channels.html); work priced by "
            "deploy/latency/htp_tiling.py (a grouped conv per group)")
INT8_PEAK = (45e3 / 2, "45 TOPS int8 = 22.5 TMAC/s: the Snapdragon 8 Gen 3 Hexagon NPU's quoted int8 peak "
                      "(https://runlocalai.co/hardware/snapdragon-8-gen-3; a third-party figure: Qualcomm publishes no "
                      "TOPS for the 8 Gen 3). A peak, so any effective rate is at most this")
BOX = {"rate": (10.0, 1e5), "overhead": (0.1, 1e4)}
NPU_SPEEDUP = {
    "snapdragon_8elite": (1.45, "Qualcomm, Snapdragon 8 Elite launch (2024-10-21): Hexagon NPU '45 percent faster' than "
                                "Snapdragon 8 Gen 3's (https://mobilesyrup.com/2024/10/21/qualcomm-announces-snapdragon-8-elite-"
                                "mobile-platform-with-oryon-cpu/)"),
    "snapdragon_8elitegen5": (1.45 * 1.37, "x1.45 (8 Elite vs 8 Gen 3, above) x 1.37: Qualcomm, Snapdragon 8 Elite Gen 5 launch "
                                           "(2025-09-25): NPU '37 per cent faster' than the 8 Elite's (https://www.business-standard.com/"
                                           "technology/tech-news/qualcommsnapdragon-8-elite-gen-5-launched-for-android-flagship-"
                                           "smartphones-specifications-125092500268_1.html)"),
}
CPU_SPEEDUP = {
    "snapdragon_8elite": (1.45, "Qualcomm, 8 Elite launch: CPU '45 percent boost in CPU performance' vs 8 Gen 3 (mobilesyrup URL above)"),
    "snapdragon_8elitegen5": (1.45 * 1.20, "x1.45 (above) x 1.20: 8 Elite Gen 5 CPU '20 per cent better performance' than 8 Elite "
                                           "(business-standard URL above)"),
}
PHONE_NAME = {"snapdragon_8gen3": "Samsung Galaxy S24 (Snapdragon 8 Gen 3, SM8650, HTP v75)",
              "snapdragon_8elite": "Samsung Galaxy S25 (Snapdragon 8 Elite, SM8750, HTP v79)",
              "snapdragon_8elitegen5": "Snapdragon 8 Elite Gen 5 QRD (SM8850, HTP v81)"}
MDLA = ("MediaTek 'Platform-Aware Model Design Guide' (NeuroPilot / Neuron SDK), table 'MDLA version mapping': "
        "MDLA 3.0 int8 2048 MAC/cycle, int16 512 MAC/cycle, FP16 512 MAC/cycle "
        "(https://mediatek.gitlab.io/aiot/doc/aiot-dev-guide/master/sw/yocto/ml-guide/neuron-sdk/neuron-dev-flow/"
        "model_design_guide.html)")


def graph_work(recompute: bool = False) -> dict:
    """{AI Hub model id: {"ops": [[op, class, work, work tiled to 32 channels], ...], "io": [in_el, out_el]}}
    at 128x128, x4 (tiled: deploy.latency.htp_tiling, as a profile with channel_tile 32 prices it)."""
    cache = Path(FLAGS.work_cache)
    if cache.is_file() and not recompute:
        return json.loads(cache.read_text())["graphs"]
    from deploy.convert.per_layer import prepare
    from deploy.latency.cost_model import _io_elements, graph_ops
    from models.zoo_aihub import AIHUB_GRAPHS
    out = {}
    for name, build in AIHUB_GRAPHS.items():
        prep = prepare(build(4, (128, 128)))
        tiled = [int(o.work) for o in graph_ops(prep, TILE)]
        traffic = _traffic(prep)
        out[name] = {"ops": [[o.op, o.klass, int(o.work), t, m] for o, t, m in zip(graph_ops(prep), tiled, traffic)],
                     "io": list(_io_elements(prep)), "params": int(prep.model.count_params())}
        print(f"  {name}: {len(out[name]['ops'])} ops", flush=True)
    atomic_write(cache, json.dumps({"about": "per-op work of our float TFLite graphs of the AI Hub architectures "
                                    "(models.zoo_aihub.AIHUB_GRAPHS, x4, 128x128); written by "
                                    "bench/fit_published_profiles.py", "graphs": out}, indent=1) + "\n")
    return out


def _traffic(prep) -> list[int]:
    """Per op: tiled activation elements read + written (htp_tiling.traffic_elements)."""
    from deploy.latency.cost_model import _details
    from deploy.latency.htp_tiling import traffic_elements
    interp, ops, tensors = _details(prep)
    acts = {int(d["index"]) for d in interp.get_input_details()}
    acts |= {int(i) for od in ops for i in od["outputs"] if i >= 0}
    return [traffic_elements([i for i in od["inputs"] if i >= 0], [i for i in od["outputs"] if i >= 0],
                             tensors, TILE, acts) for od in ops]


#: The model forms tried, all fitted on the same 4 rows, all evaluated on the held-out rows and
#: recorded (bench/results/fit_published_profiles.json "variants_tried"). The one written to the
#: profiles is picked by `choose`, a rule on the FIT rows only, fixed before any held-out result.
VARIANTS = {
    "raw": {"col": 2, "tile": 1, "fixed": {},
            "form": "t = I + (ops + 2) o + raw work / R_p (MACs of convs + output elements of other ops)"},
    "tiled32": {"col": 3, "tile": TILE, "fixed": {},
                "form": "t = I + (ops + 2) o + tiled work / R_p, every channel dimension rounded up to the HTP's "
                        "32-channel activation tile (a grouped conv per group)"},
    "tiled32_int8_peak": {"col": 3, "tile": TILE, "fixed": {"a8w8": INT8_PEAK[0]},
                          "form": "tiled32 with the a8w8 rate fixed at the NPU's quoted int8 peak (R8 not fitted)"},
}


def features(g: dict, col: int = 2) -> dict:
    """Whole-graph features; col 2 = raw work, 3 = channel-tiled work (graph_work)."""
    ops = g["ops"]
    return {"ops": len(ops) + 2, "work_g": sum(o[col] for o in ops) / 1e9,
            "conv_g": sum(o[col] for o in ops if o[1] in CONV_CLASSES) / 1e9, "io_g": sum(g["io"]) / 1e9}


def predict_ms(f: dict, precision: str, p: dict) -> float:
    """The cost model's uniform-precision prediction with these parameters (same algebra as
    deploy.latency.cost_model.from_device_profile on the profile this script writes)."""
    rate = p["rate"][precision]
    return (p["invoke_us"] + f["ops"] * p["op_us"]) / 1e3 + f["work_g"] / rate * 1e3 + f["io_g"] / p["rate"]["a8w8"] * 1e3


def fit(rows: list[dict], feats: dict, fixed: dict | None = None) -> dict:
    """Least squares in log space on the 4 fit rows; `fixed` rates ({"a8w8": GMAC/s}) are not fitted."""
    fixed = fixed or {}
    fit_rows = [r for r in rows if r["profile"] == FIT_PHONE and r["runtime"] == RUNTIME and r["model"] in FIT_MODELS]
    assert len(fit_rows) == 4, fit_rows
    names = ["rate a8w8", "rate float", "per-op overhead", "per-invoke overhead"]
    free = [i for i, n in enumerate(names) if not (i == 0 and "a8w8" in fixed) and not (i == 1 and "float" in fixed)]
    full0 = np.log([fixed.get("a8w8", 1.0), fixed.get("float", 1.0), 1.0, 1.0])

    def unpack(th):
        x = full0.copy()
        x[free] = th
        r8, rf, o, inv = np.exp(x)
        return {"rate": {"a8w8": r8, "float": rf}, "op_us": o, "invoke_us": inv}

    def resid(th):
        p = unpack(th)
        return [np.log(predict_ms(feats[r["model"]], PREC[r["precision"]], p) / r["ms"]) for r in fit_rows]

    lo = np.log([BOX["rate"][0]] * 2 + [BOX["overhead"][0]] * 2)[free]
    hi = np.log([BOX["rate"][1]] * 2 + [BOX["overhead"][1]] * 2)[free]
    best = None
    for x0 in ([1e3, 1e3, 5, 100], [1e4, 3e3, 1, 200], [300, 300, 10, 10]):  # a few starts
        r = least_squares(resid, np.log(x0)[free], bounds=(lo, hi))
        if best is None or r.cost < best.cost:
            best = r
    p = unpack(best.x)
    p["not_identified"] = [names[i] for i, v, a, b in zip(free, best.x, lo, hi) if min(v - a, b - v) < 1e-3]
    p["fixed"] = [names[i] for i in range(4) if i not in free]
    p["fit_rms_log_residual"] = float(np.sqrt(np.mean(np.square(best.fun))))
    p["rows"] = [{"model": r["model"], "precision": r["precision"], "published_ms": r["ms"],
                  "fitted_ms": round(predict_ms(feats[r["model"]], PREC[r["precision"]], p), 4),
                  "source": r["source"]} for r in fit_rows]
    return p


def choose(fits: dict) -> str:
    """FIT rows only: fewest parameters left unidentified (on the box), then the smallest RMS log
    residual on the 4 fit rows; a variant whose fit misses a fit row by > 25 % is never chosen."""
    ok = {k: f for k, f in fits.items() if max(abs(np.log(r["fitted_ms"] / r["published_ms"])) for r in f["rows"]) < np.log(1.25)}
    pool = ok or fits
    return min(pool, key=lambda k: (len(pool[k]["not_identified"]), pool[k]["fit_rms_log_residual"]))


def phone_params(p: dict, phone: str) -> dict:
    """The fitted S24 parameters carried to another phone exactly as make_profile does."""
    npu = 1.0 if phone == FIT_PHONE else NPU_SPEEDUP[phone][0]
    cpu = 1.0 if phone == FIT_PHONE else CPU_SPEEDUP[phone][0]
    return {"rate": {k: v * npu for k, v in p["rate"].items()}, "op_us": p["op_us"] / npu, "invoke_us": p["invoke_us"] / cpu}


def held_out(rows: list[dict], feats: dict, p: dict) -> dict:
    """Spearman and median relative error of this fit on every held-out TFLite row (the
    same rows and statistics as bench/latency_published.py)."""
    from scipy.stats import spearmanr
    held = [r for r in rows if r["runtime"] == RUNTIME and not (r["profile"] == FIT_PHONE and r["model"] in FIT_MODELS)]
    out = []
    for r in held:
        pred = predict_ms(feats[r["model"]], PREC[r["precision"]], phone_params(p, r["profile"]))
        out.append((r["profile"], r["ms"], pred))

    def st(sel):
        pub, pr = [x[1] for x in sel], [x[2] for x in sel]
        return {"n": len(sel), "spearman": round(float(spearmanr(pub, pr).correlation), 3),
                "median_rel_error": round(statistics.median(abs(b - a) / a for a, b in zip(pub, pr)), 3)}
    return {"overall": st(out), **{ph: st([x for x in out if x[0] == ph]) for ph in PHONE_NAME}}


def int16_ratios(data: dict) -> dict:
    out = {}
    for phone in PHONE_NAME:
        dense = sorted(r["ratio"] for r in data["w8a16_ratios"] if r["profile"] == phone and r["dense_high_res"])
        every = [r["ratio"] for r in data["w8a16_ratios"] if r["profile"] == phone]
        out[phone] = {"dense_median": statistics.median(dense), "dense_range": [min(dense), max(dense)],
                      "dense_models": sorted({r["model"] for r in data["w8a16_ratios"] if r["dense_high_res"]}),
                      "all_median": statistics.median(every), "all_n": len(every)}
    return out


def _sig(x: float, n: int = 2) -> float:
    return float(f"{x:.{n}g}")


def make_profile(name: str, p: dict, ratio: dict, npu: tuple[float, str], cpu: tuple[float, str],
                 fit_desc: str, variant: dict) -> dict:
    r8, rf = p["rate"]["a8w8"] * npu[0], p["rate"]["float"] * npu[0]
    q = ratio["dense_median"]
    r16 = r8 / q
    scale_note = "" if npu[0] == 1.0 else f"; x{npu[0]:.3g} for this phone: {npu[1]}"
    unid = (" NOT IDENTIFIED by the fit rows (the fit ended on its search box: "
            + ", ".join(p["not_identified"]) + ")") if p["not_identified"] else ""
    int16_src = (f"a8w8 rate / {q:.3g}, the median w8a16/w8a8 whole-model latency ratio of AI Hub's dense high-resolution "
                 f"conv nets on this phone ({', '.join(ratio['dense_models'])}: {ratio['dense_range'][0]:.3g}-"
                 f"{ratio['dense_range'][1]:.3g}; the median over all {ratio['all_n']} conv nets with both is "
                 f"{ratio['all_median']:.3g}), QNN runtime ({PUB}, qai_hub_models/models/<m>/perf.yaml, rows in "
                 "bench/published/ai_hub_perf.json 'w8a16_ratios'); UNCERTAINTY: the whole range above. AI Hub publishes no "
                 "int16 TFLite figure (TargetRuntime.supports_precision, qai_hub_models/models/common.py: TFLite w8a8 only); "
                 "assumed: the HTP's int16/int8 cost ratio is the same under LiteRT")
    rate_src = (f"FITTED by bench/fit_published_profiles.py on {fit_desc}{unid}{scale_note}. Elementwise ops are priced "
                "per output element at the same rate as a conv MAC (not separately identifiable from whole-model times)")
    r8_src = (f"FIXED, not fitted: {INT8_PEAK[1]}{scale_note}" if "a8w8" in variant["fixed"] else rate_src)
    ops = {}
    for klass in CONV_CLASSES + ELEMENT_CLASSES:
        unit = "GMAC/s" if klass in CONV_CLASSES else "Gelem/s"
        ops[klass] = {"a8w8": _sig(r8, 3), "a16w8": _sig(r16, 3), "float": _sig(rf, 3), "unit": unit,
                      "source": (f"a8w8/float: {rate_src}. a16w8: {int16_src}" if "a8w8" not in variant["fixed"] else
                                 f"float: {rate_src}. a8w8: {r8_src}. a16w8: {int16_src}")}
    op_us = _sig(p["op_us"] / npu[0], 2)
    inv_us = _sig(p["invoke_us"] / cpu[0], 2)
    tile = {"channel_tile": {"channels": variant["tile"], "source": TILE_SRC}} if variant["tile"] > 1 else {}
    return {
        **tile,
        "name": name,
        "description": f"LiteRT with the whole model on the Hexagon HTP of a {PHONE_NAME[name]}; rates fitted on Qualcomm AI "
                       "Hub's published whole-model TFLite latencies (bench/fit_published_profiles.py). Effective rates of "
                       "small SR graphs, not peak TOPS.",
        "accelerator": {"name": "Hexagon HTP via LiteRT (QNN delegate / AOT compiled)", "precisions": ["a8w8", "a16w8", "float"],
                        "source": "AI Hub's TFLite rows run every layer on the NPU for float and w8a8 (perf.yaml layer_counts npu == "
                                  f"total, {PUB}); int16 activations run on the HTP (DESIGN.md: 16-bit HTP kernels compile offline)"},
        "ops": ops,
        "op_overhead_us": {"a8w8": op_us, "a16w8": op_us, "float": op_us,
                           "source": f"{rate_src.split('. Elementwise')[0]}: one per-op overhead for all precisions"
                                     + (f" (S24 value / the NPU speed-up)" if npu[0] != 1.0 else "")},
        "invoke_overhead_us": {"a8w8": inv_us,
                               "source": f"{rate_src.split('; x')[0].split('. Elementwise')[0]}"
                                         + (f"; S24 value / x{cpu[0]:.3g} CPU speed-up for this phone: {cpu[1]}" if cpu[0] != 1.0 else "")},
        "requantize": {"ns_per_element": _sig(1.0 / r8, 2),
                       "source": "one int8<->int16 requantize pass = one element at the fitted a8w8 elementwise rate (1 / rate)"},
        "partition_switch": {"us": 0, "source": "0: a8w8, a16w8 and float all run on the HTP, so a precision boundary is no "
                                                "delegate boundary"},
        "int16_ratio": {"used": _sig(q, 3), "dense_range": [_sig(x, 3) for x in ratio["dense_range"]],
                        "all_conv_nets_median": _sig(ratio["all_median"], 3),
                        "source": "w8a16/w8a8 latency ratios, see the a16w8 rate sources"},
    }


def mdla_profile(base: dict) -> dict:
    ops = {}
    for klass, e in base["ops"].items():
        r8 = e["a8w8"]
        ops[klass] = {"a8w8": r8, "a16w8": _sig(r8 * 512 / 2048, 3), "float": _sig(r8 * 512 / 2048, 3), "unit": e["unit"],
                      "source": f"a16w8 and float (FP16) = a8w8 x 512/2048, the MDLA 3.0 peak MAC/cycle ratios: {MDLA}. "
                                "a8w8: ASSUMPTION, no published MDLA latency used: the snapdragon_8gen3 fitted a8w8 rate "
                                "(a contemporary flagship NPU), so only the precision ratios are sourced"}
    same = "ASSUMPTION: snapdragon_8gen3's fitted value (no published MediaTek figure)"
    return {
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


def main(argv):
    del argv
    t0 = time.time()
    data = json.loads(Path(FLAGS.published).read_text())
    graphs = graph_work(FLAGS.recompute)
    fits, tried = {}, []
    for name, v in VARIANTS.items():
        feats_v = {m: features(g, v["col"]) for m, g in graphs.items()}
        fits[name] = fit(data["sr"], feats_v, v["fixed"])
        tried.append({"variant": name, "form": v["form"], "fixed": fits[name]["fixed"],
                      "not_identified": fits[name]["not_identified"],
                      "fit_rms_log_residual": round(fits[name]["fit_rms_log_residual"], 4),
                      "params": {"rate_gmac_s": {k: _sig(x, 4) for k, x in fits[name]["rate"].items()},
                                 "op_us": _sig(fits[name]["op_us"], 3), "invoke_us": _sig(fits[name]["invoke_us"], 3)},
                      "held_out": held_out(data["sr"], feats_v, fits[name])})
    chosen = choose(fits)
    v = VARIANTS[chosen]
    p = fits[chosen]
    feats = {m: features(g, v["col"]) for m, g in graphs.items()}
    ratios = int16_ratios(data)
    fit_desc = (f"the {PUB} TFLite rows of XLSR and QuickSRNetSmall (float, w8a8) on the Galaxy S24 "
                "(bench/published/ai_hub_perf.json; qai_hub_models/models/{xlsr,quicksrnetsmall}/perf.yaml), "
                f"model form '{chosen}': {v['form']}")
    profiles = {FIT_PHONE: make_profile(FIT_PHONE, p, ratios[FIT_PHONE], (1.0, ""), (1.0, ""), fit_desc, v)}
    for phone in ("snapdragon_8elite", "snapdragon_8elitegen5"):
        profiles[phone] = make_profile(phone, p, ratios[phone], NPU_SPEEDUP[phone], CPU_SPEEDUP[phone], fit_desc, v)
    profiles["mediatek_mdla3"] = mdla_profile(profiles[FIT_PHONE])
    for name, prof in profiles.items():
        from_json(prof, name)  # the loader's checks (every number sourced, every class present)
    for t in tried:
        h = t["held_out"]["overall"]
        print(f"variant {t['variant']:<18} fit RMS log {t['fit_rms_log_residual']:.3f}, not identified "
              f"{t['not_identified'] or 'none'}, fixed {t['fixed'] or 'none'}; held-out Spearman {h['spearman']}, "
              f"median error {100 * h['median_rel_error']:.0f} %")
    print(f"chosen (fit rows only, `choose`): {chosen}")
    print(f"fit on {len(p['rows'])} rows: a8w8 {p['rate']['a8w8']:.4g} GMAC/s, float {p['rate']['float']:.4g} GMAC/s, "
          f"per-op {p['op_us']:.3g} us, per-invoke {p['invoke_us']:.3g} us; not identified: {p['not_identified'] or 'none'}")
    for r in p["rows"]:
        print(f"  {r['model']:<16}{r['precision']:<6} published {r['published_ms']:.3f} ms  fitted {r['fitted_ms']:.3f} ms")
    for phone, r in ratios.items():
        print(f"  int16 ratio {phone}: dense median {r['dense_median']:.3f} (range {r['dense_range'][0]:.3f}-"
              f"{r['dense_range'][1]:.3f}), all {r['all_n']} nets median {r['all_median']:.3f}")
    if FLAGS.write:
        for name, prof in profiles.items():
            atomic_write(PROFILE_DIR / f"{name}.json", json.dumps(prof, indent=1) + "\n")
        res = {"chosen_variant": chosen, "choice_rule": choose.__doc__.strip(), "variants_tried": tried,
               "fit": {k: v for k, v in p.items()}, "int16_ratios": ratios, "features": feats,
               "command": "python bench/fit_published_profiles.py", "seconds": round(time.time() - t0, 1)}
        atomic_write(ROOT / "bench/results/fit_published_profiles.json", json.dumps(res, indent=1, default=float) + "\n")
        print(f"wrote {', '.join(profiles)} to {PROFILE_DIR}")


if __name__ == "__main__":
    app.run(main)
