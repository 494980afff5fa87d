"""index.md: one section per input, each saying plainly when its input is absent or skipped.

Pure formatting of validated inputs (deploy/report/inputs.py) and the names of the PNGs that
deploy/report/render.py drew; renders on GitHub (pipe tables, relative image links).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from deploy.report import quality
from deploy.report.inputs import Inputs, VARIANTS
from deploy.report.measured import LatencyRow

HOWTO = {
    "sensitivity": "python tools/search_policy.py --model {m} --scale {s} --sensitivity --out sens.json, "
                   "then pass --sensitivity sens.json",
    "pareto": "python tools/search_policy.py --model {m} --scale {s} --pareto --out front.json, "
              "then pass --pareto front.json",
    "latency": "python tools/adb_bench.py --model report/inputs/models/model_policy.tflite --device pixel "
               "(or --device desktop), then pass --results adb_bench/results.jsonl",
}


def table(rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return ""
    head, *body = rows
    out = ["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in body]
    return "\n".join(out)


def _absent(inp: Inputs, section: str, default: str) -> str:
    why = inp.absent.get(section, default)
    how = HOWTO.get(section, "").format(m=inp.model, s=inp.scale)
    return f"_Not in this report: {why}._" + (f" To add it: `{how}`." if how else "")


def _quality(inp: Inputs) -> str:
    if not inp.evals:
        return _absent(inp, "quality", "no valid evaluation result")
    out = [f"PSNR_Y (dB) / SSIM_Y on {quality.convention_line(inp.evals)}.", "",
           table(quality.table(inp.evals))]
    missing = [v for v in VARIANTS if v not in inp.evals]
    if missing:
        out += ["", f"_No result for: {', '.join(missing)} (see skipped inputs)._"]
    return "\n".join(out)


def _models(inp: Inputs) -> str:
    if not inp.models:
        return _absent(inp, "models", "no converted model")
    rows = [["model", "file", "precision", "size (KiB)", "float ops left", "requantize ops", "sha256"]]
    for v, r in inp.models.items():
        floats = sorted({f["op"] for f in r.get("float_ops", [])})
        rows.append([v, f"`inputs/models/model_{v}.tflite`", r.get("precision"), f"{r['size_bytes'] / 1024:.1f}",
                     ", ".join(floats) or "none", r.get("requantize_ops", "–"), f"`{r['sha256'][:16]}`"])
    return table(rows)


def _policy(inp: Inputs, fig: Optional[str]) -> str:
    rep = inp.models.get("policy")
    if rep is None:
        return _absent(inp, "policy", "no policy model")
    layers = rep.get("layers", [])
    total = sum(l.get("macs") or 0 for l in layers) or 1
    wide = sum(l.get("macs") or 0 for l in layers if l.get("actual") == "a16w8")
    counts = {p: sum(1 for l in layers if l.get("actual") == p) for p in ("a8w8", "a16w8", "float")}
    pol = rep.get("policy", {})
    out = [f"Policy: {(inp.manifest.get('policy_source') or 'inputs/policy.json')} (default `{pol.get('default')}`, "
           f"io_type `{pol.get('io_type')}`, sha256 `{str(rep.get('policy_sha256'))[:16]}`): "
           f"{counts['a16w8']} layers a16w8, {counts['a8w8']} a8w8, {counts['float']} float; "
           f"**{wide / total:.1%} of MACs at int16**; {rep.get('requantize_ops', 0)} int8↔int16 requantize "
           f"ops; {len(rep.get('float_ops', []))} float ops left; verified op by op: {rep.get('verified')}.", ""]
    if fig:
        out += [f"![per-layer precision]({fig})", ""]
    if rep.get("float_ops"):
        out += ["Float ops left: " + "; ".join(f"{f['op']} in `{f['layer']}` ({f['reason']})"
                                              for f in rep["float_ops"]), ""]
    rows = [["#", "layer", "requested", "actual", "ops", "MMACs"]]
    rows += [[i, f"`{l['layer']}`", l["requested"], l["actual"], ",".join(dict.fromkeys(l.get("ops", []))),
              f"{(l.get('macs') or 0) / 1e6:.2f}"] for i, l in enumerate(layers)]
    out += ["<details><summary>every layer</summary>", "", table(rows), "", "</details>"]
    return "\n".join(out)


def _sensitivity(inp: Inputs, fig: Optional[str]) -> str:
    s = inp.sensitivity
    if s is None:
        return _absent(inp, "sensitivity", "no sensitivity result given")
    worst = sorted(s["layers"], key=lambda l: l["drop_db"])[:5]
    val = s.get("validation") or {}
    imgs = val.get("images")
    where = (f"{len(imgs)} validation images: {', '.join(map(str, imgs))}" if isinstance(imgs, list)
             else str(val.get("source", "")))
    out = [f"From `inputs/sensitivity.json` ({s.get('evaluations', '?')} evaluations in {s.get('seconds', '?')} s"
           + (f"; {where}" if where else "") + "). "
           "Most sensitive (PSNR_Y lost when only that layer or group is a8w8): "
           + ", ".join(f"`{l['layer']}` {l['drop_db']:+.2f} dB" for l in worst) + ".", ""]
    if fig:
        out.append(f"![per-layer sensitivity]({fig})")
    return "\n".join(out)


def _pareto(inp: Inputs, fig: Optional[str], chosen: Optional[int]) -> str:
    f = inp.pareto
    if f is None:
        return _absent(inp, "pareto", "no Pareto front given")
    n_front = sum(1 for p in f["points"] if p.get("on_front"))
    where = (f"the chosen policy is point {chosen} (PSNR_Y {f['points'][chosen]['psnr_y']:.2f} dB, "
             f"predicted {f['points'][chosen]['predicted_ms']:.2f} ms)" if chosen is not None
             else "the chosen policy is not among the evaluated points")
    out = [f"{len(f['points'])} policies evaluated, {n_front} on the front (profile "
           f"`{f.get('device_profile', '?')}`); {where}.", ""]
    if fig:
        out.append(f"![Pareto front]({fig})")
    return "\n".join(out)


def _predicted(inp: Inputs) -> list[str]:
    p = inp.predictions
    if not p:
        return []
    if not p.get("available"):
        return [f"_Predicted latency: {p.get('why')}._"]
    variants = [v for v in VARIANTS if any(v in prof.get("ms", {}) for prof in p["profiles"].values())]
    t = [["device profile (cost model)", "applies to harness rows with"] + [f"{v} ms" for v in variants]]
    for name, prof in p["profiles"].items():
        match = ", ".join(f"{k}={v}" for k, v in prof.get("match", {}).items()) or "–"
        t.append([f"`{name}`", match] + [f"{prof['ms'][v]:.2f}" if v in prof.get("ms", {}) else "–"
                                         for v in variants])
    return ["Predicted by `deploy.latency` from each shipped device profile (deploy/profiles/):", "", table(t)]


def _latency(inp: Inputs, rows: Sequence[LatencyRow], fig: Optional[str]) -> str:
    pred = _predicted(inp)
    if not rows:
        return "\n".join([_absent(inp, "latency", "no usable benchmark results")] + ([""] + pred if pred else []))
    t = [["device", "backend", "delegate", "threads", "model", "median ms", "spread", "trials",
          "delegate coverage", "throttled", "predicted ms"]]
    for r in rows:
        t.append([r.device, r.backend, r.delegate, r.threads or "–", r.variant, f"{r.median_ms:.3f}",
                  f"{r.spread_pct:.1f}%" if r.spread_pct is not None else "–",
                  r.trials + ("" if r.from_summary else " (no summary)"), r.coverage,
                  "**yes**" if r.throttled else "no", r.predicted])
    out = ["Measured by the harness (`inputs/results.jsonl`): median across trials of each trial's mean "
           "latency; spread = (slowest − fastest trial) / median. Desktop rows say nothing about NPU "
           "latency.", "", table(t)]
    if fig:
        out += ["", f"![latency]({fig})"]
    return "\n".join(out + ([""] + pred if pred else []))


def _crops(inp: Inputs, figs: Sequence[str]) -> str:
    if not figs:
        return _absent(inp, "crops", "no crops gathered")
    c = inp.crops or {}
    out = [f"Crop: the {c.get('selected_by', 'hardest window')}. Titles give PSNR_Y of the crop against "
           "ground truth; the error maps are amplified (the colour bar gives the gain and the 8-bit levels).", ""]
    out += [f"![{f}]({f})" for f in figs]
    return "\n".join(out)


def _metadata(meta: Optional[Mapping], why: str) -> str:
    if meta is None:
        return f"_Not in this report: {why}._"
    from deploy.convert.metadata import format_metadata
    return ("What a runtime finds in `inputs/models/model_policy.tflite` without this repo (flatbuffer "
            "metadata entry `srdeploy`, JSON; `python tools/report.py --inspect m.tflite` prints it):"
            "\n\n```\n" + format_metadata(meta) + "\n```")


def _reproduce(inp: Inputs) -> str:
    cmds = inp.manifest.get("commands", [])
    out = ["Every number above is read from the files in `inputs/`; `python tools/report.py --render_only "
           "--out <this folder>` redraws the report from them. They were produced by:", "",
           "```", *cmds, "```", "", table([["input file", "sha256"]] + [[f"`{k}`", f"`{v}`"]
                                                                     for k, v in sorted(inp.hashes.items())])]
    v = inp.manifest.get("versions")
    if v:
        out += ["", "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + "."]
    return "\n".join(out)


def glance(inp: Inputs, rows: Sequence[LatencyRow]) -> str:
    """One row per model: quality, size and each measured target's median latency."""
    variants = [v for v in VARIANTS if v in inp.evals or v in inp.models]
    if not variants:
        return ""
    key = lambda r: f"{r.device}, {r.delegate}, {r.threads or '?'} thr (ms)"  # noqa: E731
    targets = list(dict.fromkeys(key(r) for r in rows))
    ref = inp.evals.get("float", {}).get("mean", {}).get("psnr_y")
    t = [["model", "PSNR_Y (dB)", "Δ vs float", "size (KiB)"] + targets]
    for v in variants:
        e = inp.evals.get(v, {}).get("mean", {})
        psnr = e.get("psnr_y")
        size = inp.models.get(v, {}).get("size_bytes")
        lat = {key(r): f"{r.median_ms:.2f}" for r in rows if r.variant == v}
        t.append([quality.LABELS[v], f"{psnr:.2f}" if psnr is not None else "–",
                  f"{psnr - ref:+.2f}" if psnr is not None and ref is not None else "–",
                  f"{size / 1024:.1f}" if size else "–"] + [lat.get(k, "–") for k in targets])
    return table(t)


def write_index(inp: Inputs, figs: Mapping[str, Any], rows: Sequence[LatencyRow], chosen: Optional[int],
                meta: Optional[Mapping], meta_why: str) -> str:
    title = f"# {inp.model} x{inp.scale}: deployment report"
    parts = [title, "", f"Weights `{inp.manifest.get('weights', '?')}`; srdeploy "
             f"{(inp.manifest.get('versions') or {}).get('srdeploy', '?')}."]
    if inp.skipped:
        parts += ["", "**Skipped inputs** (the report is built from the rest):", ""]
        parts += [f"- {s}" for s in inp.skipped]
    glance_table = glance(inp, rows)
    if glance_table:
        parts += ["", glance_table]
    sections = [("Quality", _quality(inp)), ("Models", _models(inp)),
                ("Policy", _policy(inp, figs.get("policy"))),
                ("Sensitivity", _sensitivity(inp, figs.get("sensitivity"))),
                ("Pareto front", _pareto(inp, figs.get("pareto"), chosen)),
                ("Latency", _latency(inp, rows, figs.get("latency"))),
                ("Visual crops", _crops(inp, figs.get("crops", []))),
                ("Model metadata", _metadata(meta, meta_why)),
                ("Reproduce", _reproduce(inp))]
    for name, body in sections:
        parts += ["", f"## {name}", "", body]
    return "\n".join(parts) + "\n"
