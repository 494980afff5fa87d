"""The report's charts (matplotlib, Agg): policy strip, sensitivity, Pareto front, latency.

Each function takes already-validated JSON (deploy/report/inputs.py) and writes one small PNG
(100 dpi, labelled axes with units, legends), returning its file name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from deploy.report.measured import LatencyRow  # noqa: E402

PRECISION_COLOURS = {"a8w8": "#4C72B0", "a16w8": "#DD8452", "float": "#8C8C8C", "mixed": "#8172B3"}
VARIANT_COLOURS = {"float": "#8C8C8C", "int8": "#4C72B0", "a16w8": "#DD8452", "policy": "#55A868"}
DPI = 100


def _save(fig, out_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=DPI)
    plt.close(fig)
    return name


def _width(n: int) -> float:
    return min(14.0, max(6.0, 0.32 * n + 2.5))


def policy_strip(layers: Sequence[Mapping], out_dir: Path, title: str) -> str:
    """Layer order on x, actual precision as colour, MACs as bar height (log scale)."""
    names = [l["layer"] for l in layers]
    macs = [max(int(l.get("macs") or 0), 0) for l in layers]
    actual = [l["actual"] if l["actual"] in PRECISION_COLOURS else "mixed" for l in layers]
    fig, ax = plt.subplots(figsize=(_width(len(names)), 3.6))
    floor = max(min([m for m in macs if m] or [1]) / 10, 1)
    heights = [m if m else floor for m in macs]
    ax.bar(range(len(names)), heights, color=[PRECISION_COLOURS[a] for a in actual],
           edgecolor=["black" if not m else "none" for m in macs], linewidth=0.6)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_xlabel("layer (graph order)")
    ax.set_ylabel("MACs per inference (log)")
    ax.set_title(title, fontsize=10, loc="right")
    used = [p for p in PRECISION_COLOURS if p in actual]
    handles = [Patch(color=PRECISION_COLOURS[p], label=p) for p in used]
    if 0 in macs:
        handles.append(Patch(facecolor="white", edgecolor="black", label="no MACs (elementwise)"))
    ax.legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=len(handles),
              title="actual precision", title_fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out_dir, "policy.png")


def _is_chosen(entry: Mapping, chosen: Mapping[str, str]) -> bool:
    """A sensitivity entry may be a group of layers (`layers`): chosen if all are a16w8."""
    members = entry.get("layers") or [entry["layer"]]
    return bool(members) and all(chosen.get(m) == "a16w8" for m in members)


def sensitivity(sens: Mapping, chosen: Mapping[str, str], out_dir: Path) -> str:
    """Per layer: PSNR lost when only it drops to a8w8 / gained when only it rises to a16w8."""
    layers = sens["layers"]
    names = [l["layer"] for l in layers]
    x = list(range(len(names)))
    gains = [l.get("gain_db") for l in layers]
    fig, ax = plt.subplots(figsize=(_width(len(names)), 4.0))
    w = 0.4 if any(g is not None for g in gains) else 0.8
    ax.bar([i - w / 2 if w < 0.8 else i for i in x], [l["drop_db"] for l in layers], w,
           color=PRECISION_COLOURS["a8w8"], label="drop: all a16w8 but this layer a8w8")
    if w < 0.8:
        ax.bar([i + w / 2 for i, g in zip(x, gains) if g is not None], [g for g in gains if g is not None], w,
               color=PRECISION_COLOURS["a16w8"], label="gain: all a8w8 but this layer a16w8")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    for tick, entry in zip(ax.get_xticklabels(), layers):
        if _is_chosen(entry, chosen):
            tick.set_fontweight("bold")
            tick.set_color(PRECISION_COLOURS["a16w8"])
    ax.set_xlabel("layer or layer group (graph order); bold orange: a16w8 in the chosen policy")
    ax.set_ylabel("Δ PSNR_Y (dB)")
    base = sens.get("baseline", {})
    ax.set_title(f"Per-layer sensitivity, {sens['model']} x{sens['scale']} (all a16w8: "
                 f"{base.get('a16w8', float('nan')):.2f} dB, all a8w8: {base.get('a8w8', float('nan')):.2f} dB)",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out_dir, "sensitivity.png")


def pareto(front: Mapping, chosen_index: Optional[int], out_dir: Path) -> str:
    """PSNR_Y against predicted latency: every candidate, the front, uniform references, ours."""
    pts = front["points"]
    fig, ax = plt.subplots(figsize=(7, 4.4))
    off = [p for p in pts if not p.get("on_front")]
    on = sorted((p for p in pts if p.get("on_front")), key=lambda p: p["predicted_ms"])
    ax.scatter([p["predicted_ms"] for p in off], [p["psnr_y"] for p in off], s=14, color="#BBBBBB",
               label="evaluated candidates")
    if on:
        ax.plot([p["predicted_ms"] for p in on], [p["psnr_y"] for p in on], "-o", color="#55A868",
                markersize=4, label="Pareto front")
    markers = {"a8w8": "s", "a16w8": "^", "float": "D"}
    for name, ref in (front.get("uniform") or {}).items():
        if ref and ref.get("psnr_y") is not None and ref.get("predicted_ms") is not None:
            ax.scatter([ref["predicted_ms"]], [ref["psnr_y"]], marker=markers.get(name, "x"), s=50,
                       color=PRECISION_COLOURS.get(name, "black"), edgecolor="black", zorder=3,
                       label=f"all {name}")
    if chosen_index is not None:
        c = pts[chosen_index]
        ax.scatter([c["predicted_ms"]], [c["psnr_y"]], marker="*", s=260, color="#C44E52",
                   edgecolor="black", zorder=4, label="chosen policy")
    ax.set_xlabel(f"predicted latency (ms, profile {front.get('device_profile', '?')})")
    ax.set_ylabel("PSNR_Y (dB, search validation set)")
    ax.set_title(f"Precision policies: quality vs latency ({front['model']} x{front['scale']})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, out_dir, "pareto.png")


def latency(rows: Sequence[LatencyRow], out_dir: Path) -> str:
    """Median latency per device/delegate and model; whiskers = fastest..slowest trial."""
    groups = list(dict.fromkeys(f"{r.device}\n{r.delegate}, {r.threads or '?'} thr" for r in rows))
    variants = list(dict.fromkeys(r.variant for r in rows))
    w = 0.8 / max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(min(14, max(6, 1.6 * len(groups) + 3)), 4.2))
    for k, v in enumerate(variants):
        for g, label in enumerate(groups):
            r = next((r for r in rows if r.variant == v
                      and f"{r.device}\n{r.delegate}, {r.threads or '?'} thr" == label), None)
            if r is None:
                continue
            x = g - 0.4 + w * (k + 0.5)
            ax.bar(x, r.median_ms, w, color=VARIANT_COLOURS.get(v, "black"),
                   hatch="//" if r.throttled else None)
            ax.errorbar(x, r.median_ms, yerr=[[r.median_ms - r.min_ms], [r.max_ms - r.median_ms]],
                        color="black", capsize=3, linewidth=0.8)
            try:
                ax.scatter([x], [float(r.predicted.split()[0])], marker="D", color="white",
                           edgecolor="black", zorder=3, s=30)
            except ValueError:
                pass
    handles = [Patch(color=VARIANT_COLOURS.get(v, "black"), label=v) for v in variants]
    if any(r.throttled for r in rows):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="throttled"))
    if any(r.predicted[:1].isdigit() for r in rows):
        handles.append(plt.Line2D([], [], marker="D", color="white", markeredgecolor="black",
                                  linestyle="", label="cost model prediction"))
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    lo, hi = min(r.min_ms for r in rows), max(r.max_ms for r in rows)
    if lo > 0 and hi / lo > 20:  # desktop int16 vs XNNPACK int8: two orders of magnitude
        ax.set_yscale("log")
    ax.set_ylabel("latency per inference (ms, median of trials)")
    ax.set_xlabel("device, delegate, threads (whiskers: fastest..slowest trial)")
    ax.set_title("Measured latency", fontsize=10)
    ax.legend(handles=handles, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out_dir, "latency.png")
