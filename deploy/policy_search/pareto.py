"""Latency-vs-PSNR Pareto front: pick a point instead of guessing a budget.

Candidates: the MILP's optimum (deploy/policy_search/space.py) for a sweep of loss budgets from 0 to
"everything a8w8", plus both uniform policies, each measured for real on the validation
patches. A point is on the front when no other measured point is at least as fast and at
least as good, and strictly better in one of the two.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from deploy.policy_search.oracle import QualityOracle
from deploy.policy_search.solver import Candidate
from deploy.policy_search.space import Problem, solve


def non_dominated(points: Sequence[tuple[float, float]]) -> list[bool]:
    """points: (latency, psnr). True where no other point dominates (lower-or-equal latency,
    higher-or-equal PSNR, one strictly)."""
    out = []
    for i, (t, q) in enumerate(points):
        out.append(not any((t2 <= t and q2 >= q and (t2 < t or q2 > q))
                           for j, (t2, q2) in enumerate(points) if j != i))
    return out


def sweep(oracle: QualityOracle, prob: Problem, *, n_budgets: int = 12,
          progress: bool = True) -> list[Candidate]:
    total = sum(prob.drop_db)
    xs = {(0,) * prob.n: "uniform a8w8", (1,) * prob.n: "uniform a16w8"}
    for b in np.linspace(0.0, total, n_budgets):
        x = solve(prob, float(b))
        if x is not None:
            xs.setdefault(x, f"milp budget {b:.4f} dB")
    out = []
    for x, step in tqdm(list(xs.items()), desc="pareto", unit="policy", disable=not progress):
        out.append(Candidate(x, oracle.psnr(prob.assignment(x)), prob.latency_ms(x), step))
    return out


def front_json(oracle: QualityOracle, prob: Problem, cands: Sequence[Candidate], *,
               float_ms: float, device_profile: str) -> dict[str, Any]:
    flags = non_dominated([(c.ms, c.psnr) for c in cands])
    by_x = {c.x: c for c in cands}
    narrow, wide = by_x[(0,) * prob.n], by_x[(1,) * prob.n]
    points = sorted(({"policy": oracle.policy(prob.assignment(c.x)).to_json(), "psnr_y": round(c.psnr, 4),
                      "predicted_ms": round(c.ms, 4), "a16w8_fraction": round(sum(c.x) / prob.n, 4),
                      "on_front": f, "step": c.step} for c, f in zip(cands, flags)),
                    key=lambda p: p["predicted_ms"])
    return {"kind": "pareto", "model": oracle.model, "scale": oracle.scale,
            "device_profile": device_profile, "validation": oracle.val.to_json(), "points": points,
            "uniform": {"a8w8": {"psnr_y": round(narrow.psnr, 4), "predicted_ms": round(narrow.ms, 4)},
                        "a16w8": {"psnr_y": round(wide.psnr, 4), "predicted_ms": round(wide.ms, 4)},
                        "float": {"psnr_y": round(oracle.float_psnr(), 4), "predicted_ms": round(float_ms, 4)}}}


def confirm_on_litert(front: dict[str, Any], oracle: QualityOracle, prob: Problem, cands: Sequence[Candidate], *,
                      progress: bool = True) -> dict[str, Any]:
    """A fast (simulated) oracle's front, judged on LiteRT: every point on the front and both
    uniform policies measured on real integer models (`litert_psnr_y`), with the largest
    fast-vs-LiteRT difference; the front a user picks from is then not only a simulation.
    A LiteRT oracle's front is returned as it is (already real)."""
    judge = getattr(oracle, "judge", None)
    if judge is None:
        return front
    by_key = {oracle.policy(prob.assignment(c.x)).to_json()["layers"].__repr__(): c for c in cands}
    todo = [p for p in front["points"] if p["on_front"]]
    diffs = []
    for p in tqdm(todo, desc="pareto on LiteRT", unit="policy", disable=not progress):
        c = by_key[p["policy"]["layers"].__repr__()]
        real = judge.psnr(prob.assignment(c.x))
        p["litert_psnr_y"] = round(real, 4)
        diffs.append(p["psnr_y"] - real)
    for name, x in (("a8w8", (0,) * prob.n), ("a16w8", (1,) * prob.n)):
        u = front["uniform"][name]
        u["litert_psnr_y"] = round(judge.psnr(prob.assignment(x)), 4)
        diffs.append(u["psnr_y"] - u["litert_psnr_y"])
    front["oracle"] = "fast"
    front["litert_check"] = {"points": len(todo) + 2, "max_abs_diff_db": round(float(np.max(np.abs(diffs))), 4),
                             "note": "psnr_y: simulated (fast oracle); litert_psnr_y: the same policy measured "
                                     "on LiteRT's integer kernels (front points and uniform policies)"}
    return front


def plot(front: dict[str, Any], path: str | Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    pts = front["points"]
    off = [p for p in pts if not p["on_front"]]
    on = [p for p in pts if p["on_front"]]
    ax.scatter([p["predicted_ms"] for p in off], [p["psnr_y"] for p in off], s=14, color="0.6",
               label="measured policies (dominated)")
    ax.plot([p["predicted_ms"] for p in on], [p["psnr_y"] for p in on], "o-", color="C0",
            label="Pareto front (hybrid policies)")
    if on and all("litert_psnr_y" in p for p in on):
        ax.scatter([p["predicted_ms"] for p in on], [p["litert_psnr_y"] for p in on], marker="x", s=40,
                   color="C1", label="front points measured on LiteRT", zorder=3)
    marks = {"a8w8": ("s", "C3", "uniform int8 (a8w8)"), "a16w8": ("D", "C2", "uniform a16w8"),
             "float": ("*", "black", "float")}
    for k, (m, c, label) in marks.items():
        u = front["uniform"][k]
        ax.scatter([u["predicted_ms"]], [u["psnr_y"]], marker=m, s=80, color=c, label=label, zorder=3)
    if "chosen" in front:
        ch = front["chosen"]
        ax.scatter([ch["predicted_ms"]], [ch["psnr_y"]], marker="o", s=160, facecolors="none",
                   edgecolors="C1", linewidths=2, label="chosen policy", zorder=4)
    ax.set_xlabel(f"predicted latency (ms, device profile {front['device_profile']})")
    ax.set_ylabel("PSNR_Y on validation patches (dB)")
    ax.set_title(f"{front['model']} x{front['scale']}: latency vs quality")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
