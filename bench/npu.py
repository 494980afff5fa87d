"""Every zoo model on Qualcomm's NPU, offline: what compiles where, and the NPU's own quality.

  python bench/npu.py                                        # every model, x3 and x4, 3 SoCs
  python bench/npu.py --models xlsr,espcn --scales 3 --no_emulate

Per model x scale x variant (uniform int8 and a16w8 by the converter, deploy.quantize; the searched
hybrid of bench/results/search.json, budget 0.1 dB, profile htp_npu) x SoC (SM8550, SM8650,
SM8750, SM8850): every shipped weight, and the latency-only SRGAN / RRDBNet at x4 with random
weights (placement only: no hybrid, no emulation). Ops placed on the NPU / total, partitions, the ops left on the CPU with the compiler's
reason, compile time; for SM8650 also PSNR_Y/SSIM_Y on the default evaluation set on the LiteRT
CPU interpreter and as the NPU computes it (QNN HTP emulation of the compiled model).

Writes bench/results/npu.json after every model (so a cut-off run keeps what it measured) and the
README table between `<!-- npu:begin -->` and `<!-- npu:end -->`. Rows of models not run this time
are kept; a model's evaluation is reused when its converted .tflite (sha256), its weights and its
policy are unchanged (a16w8 evaluation of EDSR/IMDN runs LiteRT's int16 reference kernels: slow).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from absl import app, flags

import models
from deploy import provenance
from deploy._files import replace_marked
from deploy._files import atomic_write, sha256_bytes

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "npu.json"
SEARCH = REPO / "bench" / "results" / "search.json"
EMULATED_SOC = "SM8650"
VARIANTS = ("int8", "a16w8", "hybrid")
HYBRID_BUDGET_DB, HYBRID_PROFILE = 0.1, "htp_npu"

FLAGS = flags.FLAGS
flags.DEFINE_list("models", list(models.MODELS) + list(models.GRAPH_ONLY), "zoo models, in this order (the latency-only "
                  "graphs compile only: random weights, x4, no hybrid, no emulation)")
flags.DEFINE_list("scales", ["3", "4"], "upscaling factors")
flags.DEFINE_list("socs", ["SM8550", "SM8650", "SM8750", "SM8850"], "Qualcomm SoCs to compile for")
flags.DEFINE_list("variants", list(VARIANTS), "int8, a16w8, hybrid")
flags.DEFINE_bool("no_emulate", False, "skip the CPU vs emulated-NPU evaluation (compile only)")
flags.DEFINE_string("out", str(OUT), "results JSON")
flags.DEFINE_bool("write_readme", True, "regenerate the README table")


def searched_policy(src, name: str, scale: int):
    """(Policy or None, where it came from / why there is none)."""
    from deploy.convert.policy import Policy
    rows = json.loads(SEARCH.read_text())["rows"] if SEARCH.is_file() else []
    row = next((r for r in rows if r["model"] == name and r["scale"] == scale and r["profile"] == HYBRID_PROFILE
                and abs(r["budget_db"] - HYBRID_BUDGET_DB) < 1e-9), None)
    if row is None:  # the NPU-judged search of bench/npu_numerics.py (same profile and budget)
        numerics = REPO / "bench" / "results" / "npu_numerics.json"
        rows = json.loads(numerics.read_text())["rows"] if numerics.is_file() else []
        hit = next((r for r in rows if r["model"] == name and r["scale"] == scale
                    and (r.get("judged_on_npu") or {}).get("policy")), None)
        if hit is not None:
            return Policy.from_json(hit["judged_on_npu"]["policy"]), "npu_numerics.json NPU-judged policy"
        return None, f"no {HYBRID_PROFILE} {HYBRID_BUDGET_DB} dB row in search.json or npu_numerics.json"
    if row.get("policy"):
        return Policy.from_json(row["policy"]), "search.json policy"
    if "a16w8_groups" in row:  # rows record the searched decision groups ("conv3+pixel_shuffle")
        layers = {layer: "a16w8" for g in row["a16w8_groups"] for layer in g.split("+")}
        return (Policy.uniform(src, "a8w8").with_layers(layers),
                "search.json has no 'policy'; rebuilt from its a16w8_groups (rest a8w8)")
    return None, "search.json row has neither 'policy' nor 'a16w8_groups'"


def _weights_sha(name: str, scale: int) -> str | None:
    path = models.weights_path(name, scale)
    return models.registry.file_sha256(path) if path else None


def run_model(name: str, scale: int, socs, previous: dict) -> list[dict]:
    import deploy
    from deploy import npu
    from deploy.evaluation.emulated import compare_npu
    graph_only = name in models.GRAPH_ONLY   # latency/compile-only: random weights, placement only
    src = deploy.load_model(name, scale, weights=not graph_only)
    rows = []
    for variant in FLAGS.variants:
        if graph_only and variant == "hybrid":
            continue
        base = {"model": name, "scale": scale, "variant": variant,
                "weights_sha256": "random (latency/compile-only graph)" if graph_only else _weights_sha(name, scale)}
        how, policy = "converter (deploy.quantize uniform)", None
        if variant == "hybrid":
            policy, how = searched_policy(src, name, scale)
            if policy is None:
                rows += [{**base, "soc": s.name, "error": how} for s in socs]
                print(f"{name} x{scale} hybrid: {how}")
                continue
            base["policy"] = policy.to_json()
        base["route"] = how
        try:
            t = time.perf_counter()
            q = deploy.quantize(src, policy if policy is not None else variant)
            base["convert_s"] = round(time.perf_counter() - t, 1)
        except deploy.SrdeployError as e:
            rows += [{**base, "soc": s.name, "error": f"conversion failed: {' '.join(str(e).split())}"} for s in socs]
            continue
        base["model_sha256"] = sha256_bytes(q.tflite_bytes)
        for soc in socs:
            row = {**base, "soc": soc.name}
            try:
                r = npu.compile_tflite(q.tflite_bytes, soc).report
                row.update({"ops_on_npu": r.ops_on_npu, "ops_total": r.ops_total, "partitions": r.partitions,
                            "whole": r.whole, "compile_s": round(r.compile_seconds, 2),
                            "cpu_ops": [{"op": c.op, "reason": c.reason} for c in r.cpu_ops],
                            "versions": r.versions})
            except deploy.SrdeployError as e:
                row["error"] = " ".join(str(e).split())
            if soc.name == EMULATED_SOC and "error" not in row and not FLAGS.no_emulate and not graph_only:
                old = previous.get((name, scale, variant, soc.name))
                if old and "npu_psnr_y" in old and all(old.get(k) == row.get(k) for k in
                                                       ("model_sha256", "weights_sha256", "policy")):
                    row.update({k: old[k] for k in old if k.startswith(("cpu_", "npu_", "diff_", "emulate_"))})
                    row["emulation_reused"] = True
                else:
                    t = time.perf_counter()
                    c = compare_npu(q, soc.target)
                    row.update({"cpu_psnr_y": round(c.cpu.mean["psnr_y"], 3), "npu_psnr_y": round(c.npu.mean["psnr_y"], 3),
                                "cpu_ssim_y": round(c.cpu.mean["ssim_y"], 4), "npu_ssim_y": round(c.npu.mean["ssim_y"], 4),
                                "diff_psnr_y": round(c.mean_difference["psnr_y"], 3),
                                "diff_psnr_y_images": [round(d["psnr_y"], 3) for d in c.differences()],
                                "emulate_s": round(time.perf_counter() - t, 1)})
            elif soc.name == EMULATED_SOC and (old := previous.get((name, scale, variant, soc.name))) \
                    and "npu_psnr_y" in old and old.get("model_sha256") == row.get("model_sha256"):
                row.update({k: old[k] for k in old if k.startswith(("cpu_", "npu_", "diff_", "emulate_"))})
            rows.append(row)
            print(_line(row))
    return rows


def _line(r: dict) -> str:
    if "error" in r and "ops_total" not in r:
        return f"{r['model']} x{r['scale']} {r['variant']:<6} {r['soc']}: {r['error']}"
    s = (f"{r['model']} x{r['scale']} {r['variant']:<6} {r['soc']}: {r['ops_on_npu']}/{r['ops_total']} ops, "
         f"{r['partitions']} partition(s), {r['compile_s']:.2f} s")
    if "npu_psnr_y" in r:
        s += f"; PSNR_Y CPU {r['cpu_psnr_y']:.2f} emulated {r['npu_psnr_y']:.2f} ({r['diff_psnr_y']:+.3f})"
    return s + "".join(f"\n    CPU op {c['op']}: {c['reason']}" for c in r.get("cpu_ops", []))


def write(rows: list[dict], out: Path) -> None:
    doc = {"note": "Qualcomm HTP AOT compile (LiteRT compiler plugin + QAIRT from onnxruntime-qnn), offline; "
                   f"PSNR_Y on the default evaluation set for {EMULATED_SOC}: LiteRT CPU vs QNN HTP emulation of "
                   "the compiled model", "rows": rows,
           "provenance": provenance.collect()}
    atomic_write(out, json.dumps(doc, indent=2) + "\n")


BEGIN, END = "<!-- npu:begin -->", "<!-- npu:end -->"


def _cell(r: dict | None) -> str:
    if r is None:
        return "–"
    if "ops_total" not in r:
        return "n/a"
    return f"{r['ops_on_npu']}/{r['ops_total']} ({r['partitions']})" + (" ✓" if r["whole"] else "")


def write_readme(rows: list[dict], socs: list[str]) -> None:
    """The README's NPU table, regenerated from the rows (never typed by hand)."""
    by = {(r["model"], r["scale"], r["variant"], r["soc"]): r for r in rows}
    keys = list(dict.fromkeys((r["model"], r["scale"], r["variant"]) for r in rows))
    head = ("| model | variant | " + " | ".join(f"{s} NPU ops (partitions)" for s in socs)
            + f" | compile s ({EMULATED_SOC}) | PSNR_Y CPU | PSNR_Y {EMULATED_SOC} emulated | difference |\n"
            + "|---" * (len(socs) + 6) + "|")
    lines, reasons, notes = [], {}, {}
    for m, s, v in keys:
        cells = [_cell(by.get((m, s, v, soc))) for soc in socs]
        e = by.get((m, s, v, EMULATED_SOC), {})
        ev = (f"{e['cpu_psnr_y']:.2f} | {e['npu_psnr_y']:.2f} | {e['diff_psnr_y']:+.3f}" if "npu_psnr_y" in e
              else "– | – | –")
        comp = f"{e['compile_s']:.2f}" if "compile_s" in e else "–"
        lines.append(f"| {m} x{s} | {v} | " + " | ".join(cells) + f" | {comp} | {ev} |")
        for soc in socs:
            r = by.get((m, s, v, soc), {})
            for c in r.get("cpu_ops", []):
                reasons.setdefault(f"{c['op']}: {c['reason']}", []).append(f"{m} x{s} {v} {soc}")
            if "error" in r:
                notes.setdefault(r["error"], []).append(f"{m} x{s} {v} {soc}")
    whole = sum(1 for r in rows if r.get("whole"))
    compiled = sum(1 for r in rows if "ops_total" in r)
    body = [BEGIN, f"Measured by `python bench/npu.py` ({compiled} compiles, {whole} whole: every op on the NPU in "
            "one partition, marked ✓). Cells: ops the compiler placed on the NPU / all ops (partitions). PSNR_Y (dB) "
            "on the default evaluation set: the LiteRT CPU interpreter vs the same model compiled for "
            f"{EMULATED_SOC} and run in QNN's HTP emulation (CPU ops, if any, on LiteRT); difference = emulated − "
            "CPU. int8/a16w8: the converter's uniform models; hybrid: the policy bench/search.py found "
            f"(budget {HYBRID_BUDGET_DB} dB, profile {HYBRID_PROFILE}).", "", head, *lines]
    big = [f"{m} x{s} {v} ({by.get((m, s, v, EMULATED_SOC), {}).get('diff_psnr_y', 0):+.3f} dB)"
           for (m, s, v) in dict.fromkeys((r["model"], r["scale"], r["variant"]) for r in rows)
           if abs(by.get((m, s, v, EMULATED_SOC), {}).get("diff_psnr_y", 0)) > 0.1]
    if big:
        body += ["", f"Emulated and CPU differ by more than 0.1 dB: {', '.join(big)}.{_prelu_note()}"]
    if reasons:
        body += ["", "Ops left on the CPU, with the compiler's reason:", ""]
        body += [f"- {why} ({len(where)}×, e.g. {where[0]})" for why, where in reasons.items()]
    if notes:
        body += ["", "Not compiled:", ""] + [f"- {why} ({', '.join(where[:3])}{' …' if len(where) > 3 else ''})"
                                              for why, where in notes.items()]
    body.append(END)
    replace_marked(REPO / "README.md", BEGIN, END, "\n".join(body))


def _prelu_note() -> str:
    """The measured explanation (bench/npu_prelu_probe.py), if that probe has been run."""
    path = REPO / "bench" / "results" / "npu_prelu_probe.json"
    if not path.is_file():
        return " Run `python bench/npu_prelu_probe.py` for the PReLU probe."
    rows = {r["activation"]: r for r in json.loads(path.read_text())["rows"]}
    return (" FSRCNN is the only zoo model with PReLU; `python bench/npu_prelu_probe.py` compiles a "
            "three-conv int8 net with PReLU and with ReLU: against the float model the emulated NPU's mean "
            f"error is {rows['prelu']['npu_vs_cpu_error']:.2f}x LiteRT CPU's with PReLU and "
            f"{rows['relu']['npu_vs_cpu_error']:.2f}x with ReLU, so the NPU computes int8 PReLU more "
            "precisely than LiteRT's kernel and the higher emulated PSNR is that, not an error.")


def main(argv):
    del argv
    from deploy import npu
    socs = [npu.resolve_soc(s) for s in FLAGS.socs]
    if EMULATED_SOC not in [s.name for s in socs] and not FLAGS.no_emulate:
        print(f"note: emulation runs for {EMULATED_SOC} only, which is not in --socs")
    out = Path(FLAGS.out)
    rows = json.loads(out.read_text())["rows"] if out.is_file() else []
    previous = {(r["model"], r["scale"], r["variant"], r["soc"]): r for r in rows}
    for name in FLAGS.models:
        for scale in map(int, FLAGS.scales):
            if name in models.GRAPH_ONLY and scale == 4:
                pass   # compiled with random weights: placement does not depend on them
            elif (name, scale) not in set(models.available_weights()):
                print(f"skip {name} x{scale}: no shipped weights")
                continue
            new = run_model(name, scale, socs, previous)
            done = {(r["model"], r["scale"], r["variant"], r["soc"]) for r in new}
            rows = [r for r in rows if (r["model"], r["scale"], r["variant"], r["soc"]) not in done] + new
            order = {m: i for i, m in enumerate([*models.MODELS, *models.GRAPH_ONLY])}
            rows.sort(key=lambda r: (r["scale"], order.get(r["model"], 99), VARIANTS.index(r["variant"]), r["soc"]))
            write(rows, out)  # after every model, so a cut-off run keeps what it measured
            if FLAGS.write_readme:   # every SoC measured so far, not only this run's --socs
                write_readme(rows, sorted({r["soc"] for r in rows}))
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
