"""Draw the report from its `inputs/` folder alone: PNGs + index.md, nothing recomputed."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from deploy.convert import metadata
from deploy.convert.policy import Policy, PolicyError
from deploy.report import crops, figures, markdown, measured
from deploy.report.inputs import Inputs, load, model_name


@dataclasses.dataclass(frozen=True)
class Rendered:
    index: Path
    figures: tuple[str, ...]
    skipped: tuple[str, ...]
    sections: dict  # section -> True when it has content
    summary: str = ""  # the at-a-glance table (markdown), also printed by tools/report.py


def _chosen(inp: Inputs) -> dict[str, str]:
    rep = inp.models.get("policy")
    return {l["layer"]: l["requested"] for l in rep.get("layers", [])} if rep else {}


def chosen_point(inp: Inputs) -> Optional[int]:
    """Index of the Pareto point whose policy gives every layer the same precision as ours."""
    ours = _chosen(inp)
    if not inp.pareto or not ours:
        return None
    for i, p in enumerate(inp.pareto["points"]):
        try:
            if Policy.from_json(p["policy"]).resolved(ours) == ours:
                return i
        except (PolicyError, TypeError, ValueError):
            continue
    return None


def _metadata(inp: Inputs) -> tuple[Optional[dict], str]:
    if "policy" not in inp.models:
        return None, "no policy model"
    try:
        return metadata.read(inp.root / model_name("policy")), ""
    except metadata.MetadataError as e:
        return None, str(e)


def render(out_dir: Path) -> Rendered:
    """Read `out_dir/inputs`, write the figures and `out_dir/index.md`."""
    inp = load(out_dir / "inputs")
    figs: dict = {"crops": []}
    pol = inp.models.get("policy")
    if pol and pol.get("layers"):
        figs["policy"] = figures.policy_strip(
            pol["layers"], out_dir, f"{inp.model} x{inp.scale}: per-layer precision (policy sha256 "
            f"{str(pol.get('policy_sha256'))[:12]})")
    if inp.sensitivity:
        figs["sensitivity"] = figures.sensitivity(inp.sensitivity, _chosen(inp), out_dir)
    chosen = chosen_point(inp)
    if inp.pareto:
        figs["pareto"] = figures.pareto(inp.pareto, chosen, out_dir)
    rows = measured.rows(inp.records, inp.model_shas(), inp.predictions)
    if rows:
        figs["latency"] = figures.latency(rows, out_dir)
    for entry in (inp.crops or {}).get("images", []):
        bad = [rel for rel in entry.get("files", {}).values()
               if not (inp.root / rel).is_file() or inp.manifest["files"].get(rel, inp.hashes.get(rel)) != inp.hashes.get(rel)]
        if bad:
            inp.skipped.append(f"crop {entry.get('image')}: {bad[0]} is missing or changed since gathering")
            continue
        figs["crops"].append(crops.figure(entry, inp.root, out_dir))
    meta, why = _metadata(inp)
    text = markdown.write_index(inp, figs, rows, chosen, meta, why)
    index = out_dir / "index.md"
    index.write_text(text)
    names = tuple(v for k, v in figs.items() if k != "crops") + tuple(figs["crops"])
    sections = {"quality": bool(inp.evals), "policy": "policy" in figs, "sensitivity": "sensitivity" in figs,
                "pareto": "pareto" in figs, "latency": bool(rows), "crops": bool(figs["crops"]),
                "metadata": meta is not None}
    return Rendered(index, names, tuple(inp.skipped), sections, markdown.glance(inp, rows))
