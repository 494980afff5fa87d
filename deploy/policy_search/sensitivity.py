"""Per-layer sensitivity: how much PSNR_Y each decision unit costs at a8w8, measured for real.

For every group (deploy/search_space.py): PSNR(all a16w8 but this group a8w8) − PSNR(all a16w8)
("drop", usually ≤ 0) and PSNR(all a8w8 but this group a16w8) − PSNR(all a8w8) ("gain").
2·groups + 2 quantized models, all from one calibration (QualityOracle).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Optional

from tqdm import tqdm

from deploy.policy_search.oracle import QualityOracle
from deploy.policy_search.space import NARROW, WIDE, Group


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    model: str
    scale: int
    groups: tuple[Group, ...]
    macs: tuple[int, ...]
    baseline: dict[str, float]  # uniform a16w8 / a8w8 PSNR_Y
    drop_db: tuple[float, ...]
    gain_db: tuple[Optional[float], ...]
    evaluations: int
    seconds: float
    validation: dict

    def to_json(self) -> dict[str, Any]:
        return {"kind": "sensitivity", "model": self.model, "scale": self.scale,
                "validation": self.validation, "baseline": _r(self.baseline),
                "layers": [{"layer": g.name, "layers": list(g.layers), "macs": m,
                            "drop_db": round(d, 4), "gain_db": None if a is None else round(a, 4)}
                           for g, m, d, a in zip(self.groups, self.macs, self.drop_db, self.gain_db)],
                "evaluations": self.evaluations, "seconds": round(self.seconds, 1)}

    def table(self, top: int = 15) -> str:
        order = sorted(range(len(self.groups)), key=lambda i: self.drop_db[i])
        rows = [f"{'layer (group)':<40}{'MMACs':>8}{'drop dB':>10}{'gain dB':>10}"]
        for i in order[:top]:
            gain = "" if self.gain_db[i] is None else f"{self.gain_db[i]:+10.3f}"
            rows.append(f"{self.groups[i].name[:39]:<40}{self.macs[i] / 1e6:8.2f}{self.drop_db[i]:+10.3f}{gain:>10}")
        if len(order) > top:
            rows.append(f"... {len(order) - top} more in the JSON")
        return "\n".join(rows)


def _r(d: dict) -> dict:
    return {k: round(v, 4) for k, v in d.items()}


def measure(oracle: QualityOracle, groups: tuple[Group, ...], macs: dict[str, int], *,
            both_directions: bool = True, progress: bool = True) -> Sensitivity:
    t0, e0 = time.perf_counter(), oracle.evaluations
    wide, narrow = oracle.uniform(WIDE), oracle.uniform(NARROW)
    base = {WIDE: oracle.psnr(wide), NARROW: oracle.psnr(narrow)}
    drop, gain = [], []
    bar = tqdm(groups, desc="sensitivity", unit="layer", disable=not progress)
    for g in bar:
        drop.append(oracle.psnr({**wide, **{l: NARROW for l in g.layers}}) - base[WIDE])
        gain.append(oracle.psnr({**narrow, **{l: WIDE for l in g.layers}}) - base[NARROW]
                    if both_directions else None)
        bar.set_postfix(layer=g.name[:20], drop=f"{drop[-1]:+.3f}")
    return Sensitivity(oracle.model, oracle.scale, tuple(groups),
                       tuple(sum(macs.get(l, 0) for l in g.layers) for g in groups), base,
                       tuple(drop), tuple(gain), oracle.evaluations - e0,
                       time.perf_counter() - t0, oracle.val.to_json())


def plot(sens: Sensitivity, path: str | Path) -> None:
    """Horizontal bars, most sensitive at the top: what a8w8 costs per layer (and what a16w8 buys)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(range(len(sens.groups)), key=lambda i: sens.drop_db[i], reverse=True)
    names = [sens.groups[i].name if len(sens.groups[i].name) < 36 else sens.groups[i].name[:33] + "..."
             for i in order]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.28 * len(order)))
    y = range(len(order))
    ax.barh([v - 0.2 for v in y], [-sens.drop_db[i] for i in order], height=0.4,
            label="PSNR lost: this layer a8w8, rest a16w8")
    if all(g is not None for g in sens.gain_db):
        ax.barh([v + 0.2 for v in y], [sens.gain_db[i] for i in order], height=0.4,
                label="PSNR gained: this layer a16w8, rest a8w8")
    ax.set_yticks(list(y), names, fontsize=7)
    ax.set_xlabel("PSNR_Y change (dB)")
    ax.set_title(f"{sens.model} x{sens.scale}: per-layer sensitivity "
                 f"(a16w8 {sens.baseline[WIDE]:.2f} dB, a8w8 {sens.baseline[NARROW]:.2f} dB)")
    ax.axvline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
