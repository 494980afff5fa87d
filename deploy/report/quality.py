"""Quality tables from evaluate JSONs: PSNR_Y / SSIM_Y per image and mean, bicubic to policy.

Pure: numbers are read from the JSONs (deploy/evaluation/evaluator.py's contract), never recomputed.
"""
from __future__ import annotations

from typing import Mapping, Optional

from deploy.report.inputs import VARIANTS

LABELS = {"bicubic": "bicubic", "float": "float (Keras)", "int8": "int8", "a16w8": "a16w8 (int16x8)",
          "policy": "policy (per layer)"}


def columns(evals: Mapping[str, dict]) -> list[str]:
    """bicubic first (from any evaluation), then each variant that has a result."""
    return (["bicubic"] if evals else []) + [v for v in VARIANTS if v in evals]


def _cell(psnr: Optional[float], ssim: Optional[float]) -> str:
    return "–" if psnr is None else f"{psnr:.2f} / {ssim:.4f}"


def table(evals: Mapping[str, dict]) -> list[list[str]]:
    """Rows [image, cells...] + mean + Δ vs float; the header is row 0."""
    cols = columns(evals)
    if not cols:
        return []
    first = evals[cols[1]]
    by_variant = {v: {i["name"]: i for i in evals[v]["images"]} for v in cols[1:]}
    rows = [["image"] + [LABELS[c] for c in cols]]
    for img in first["images"]:
        name = img["name"]
        row = [name, _cell(img["bicubic_psnr_y"], img["bicubic_ssim_y"])]
        for v in cols[1:]:
            i = by_variant[v].get(name)
            row.append(_cell(i and i["psnr_y"], i and i["ssim_y"]))
        rows.append(row)
    mean = ["**mean**", _cell(first["bicubic"]["psnr_y"], first["bicubic"]["ssim_y"])]
    mean += [f"**{_cell(evals[v]['mean']['psnr_y'], evals[v]['mean']['ssim_y'])}**" for v in cols[1:]]
    rows.append(mean)
    if "float" in evals:
        ref = evals["float"]["mean"]
        delta = ["Δ vs float", f"{first['bicubic']['psnr_y'] - ref['psnr_y']:+.2f} dB"]
        delta += [f"{evals[v]['mean']['psnr_y'] - ref['psnr_y']:+.2f} dB" for v in cols[1:]]
        rows.append(delta)
    return rows


def hardest_images(evals: Mapping[str, dict], n: int = 3) -> list[str]:
    """Images where int8 loses most PSNR_Y to float (where quantization artefacts show)."""
    if "int8" not in evals or "float" not in evals:
        return [i["name"] for i in next(iter(evals.values()))["images"][:n]] if evals else []
    f = {i["name"]: i["psnr_y"] for i in evals["float"]["images"]}
    loss = sorted(((f[i["name"]] - i["psnr_y"], i["name"]) for i in evals["int8"]["images"]
                   if i["name"] in f), reverse=True)
    return [name for _, name in loss[:n]]


def convention_line(evals: Mapping[str, dict]) -> str:
    """How the numbers were measured (every evaluate JSON carries its convention)."""
    if not evals:
        return ""
    e = next(iter(evals.values()))
    c = e["convention"]
    parts = ", ".join(f"{k}={v}" for k, v in c.items())
    return f"dataset `{e.get('dataset')}` ({len(e['images'])} images), x{e['scale']}; {parts}"
