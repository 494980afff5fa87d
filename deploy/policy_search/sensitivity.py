"""Per-layer sensitivity: how much PSNR_Y each decision unit costs at a8w8, measured for real.

For every group (deploy/policy_search/space.py): PSNR(all a16w8 but this group a8w8) − PSNR(all a16w8)
("drop", usually ≤ 0) and PSNR(all a8w8 but this group a16w8) − PSNR(all a8w8) ("gain").
2·groups + 2 quantized models, all from one calibration (QualityOracle).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Optional

from tqdm import tqdm

from deploy.policy_search import parallel
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
    #: how the drops were made: {"method": "exact"} or drop_estimate's record
    method: dict = dataclasses.field(default_factory=lambda: {"method": "exact"})

    def to_json(self) -> dict[str, Any]:
        return {"kind": "sensitivity", "model": self.model, "scale": self.scale,
                "validation": self.validation, "baseline": _r(self.baseline),
                "layers": [{"layer": g.name, "layers": list(g.layers), "macs": m,
                            "drop_db": round(d, 4), "gain_db": None if a is None else round(a, 4)}
                           for g, m, d, a in zip(self.groups, self.macs, self.drop_db, self.gain_db)],
                "evaluations": self.evaluations, "seconds": round(self.seconds, 1), "drops": self.method}

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


class MeasuredCache:
    """Measured PSNRs kept as they are measured (JSON lines, one fsync'ed line each), so an
    interrupted sensitivity pass (Ctrl-C, a crash) loses nothing: a rerun with the same `key`
    (model, weights, groups, calibration and validation sets) takes them and continues. Lines
    of another key, and a torn last line, are ignored."""

    def __init__(self, path: str | Path, key: str):
        self.path, self.key = Path(path), key
        self.values: dict[str, float] = {}
        if self.path.is_file():
            for raw in self.path.read_bytes().splitlines():
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    continue
                if isinstance(rec, dict) and rec.get("key") == key and isinstance(rec.get("psnr_y"), (int, float)):
                    self.values[str(rec.get("tag"))] = float(rec["psnr_y"])
        self.reused = len(self.values)

    def get(self, tag: str, measure) -> float:
        if tag not in self.values:
            self.put(tag, measure())
        return self.values[tag]

    def put(self, tag: str, value: float) -> float:
        """Keep `value` for `tag`: one fsync'ed line, so a crash right after loses nothing."""
        value = float(value)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab+") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():  # a torn last line from a killed run: start on a new line
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write((json.dumps({"key": self.key, "tag": tag, "psnr_y": value}) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
        self.values[tag] = value
        return value

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def measure(oracle: QualityOracle, groups: tuple[Group, ...], macs: dict[str, int], *,
            both_directions: bool = True, progress: bool = True,
            cache: Optional[MeasuredCache] = None, evaluator: Optional[parallel.Evaluator] = None) -> Sensitivity:
    """Every group's drop (and gain); with `cache`, what an earlier interrupted run measured is
    taken from it and each new measurement lands in it as soon as its chunk returns.

    The candidates are independent, so they go to `oracle.image_psnrs_many` a chunk at a time,
    one per worker when `evaluator` runs them in parallel (deploy/policy_search/parallel.py);
    all drops come before all gains, so a chunk holds candidates of similar cost (mostly a16w8,
    whose int16 kernels are slow, or mostly a8w8). The values do not depend on the chunking."""
    t0, e0 = time.perf_counter(), oracle.evaluations
    wide, narrow = oracle.uniform(WIDE), oracle.uniform(NARROW)
    todo = [(f"uniform:{WIDE}", wide), (f"uniform:{NARROW}", narrow)]
    todo += [(f"drop:{g.name}", {**wide, **{l: NARROW for l in g.layers}}) for g in groups]
    if both_directions:
        todo += [(f"gain:{g.name}", {**narrow, **{l: WIDE for l in g.layers}}) for g in groups]
    if cache is not None and cache.reused and progress:
        tqdm.write(f"sensitivity: {cache.reused} measurement(s) of an interrupted run reused from {cache.path}")
    values: dict[str, float] = {t: cache.values[t] for t, _ in todo if cache is not None and t in cache.values}
    missing = [(t, a) for t, a in todo if t not in values]
    chunk = max(1, parallel.chunk_size(evaluator))
    bar = tqdm(total=len(todo), initial=len(todo) - len(missing), desc="sensitivity", unit="model",
               disable=not progress)
    for i in range(0, len(missing), chunk):
        part = missing[i:i + chunk]
        for (tag, a), images in zip(part, oracle.image_psnrs_many([a for _, a in part], evaluator)):
            values[tag] = cache.put(tag, oracle.score(images)) if cache is not None else oracle.score(images)
        bar.set_postfix(last=part[-1][0][:28], psnr=f"{values[part[-1][0]]:.3f}")
        bar.update(len(part))
    bar.close()
    base = {WIDE: values[f"uniform:{WIDE}"], NARROW: values[f"uniform:{NARROW}"]}
    drop = [values[f"drop:{g.name}"] - base[WIDE] for g in groups]
    gain = [values[f"gain:{g.name}"] - base[NARROW] if both_directions else None for g in groups]
    return Sensitivity(oracle.model, oracle.scale, tuple(groups),
                       tuple(sum(macs.get(l, 0) for l in g.layers) for g in groups), base,
                       tuple(drop), tuple(gain), oracle.evaluations - e0,
                       time.perf_counter() - t0, oracle.val.to_json())


def estimated(oracle, groups: tuple[Group, ...], macs: dict[str, int], *, progress: bool = True) -> Sensitivity:
    """Drops estimated from shared backward passes (deploy/policy_search/drop_estimate.py), no
    gains; the uniform baselines are the oracle's (simulated) values."""
    from deploy.policy_search import drop_estimate
    t0, e0 = time.perf_counter(), oracle.evaluations
    drops, record = drop_estimate.estimate(oracle, groups, progress=progress)
    base = {WIDE: record["a16w8_psnr_y"], NARROW: oracle.psnr(oracle.uniform(NARROW))}
    return Sensitivity(oracle.model, oracle.scale, tuple(groups),
                       tuple(sum(macs.get(l, 0) for l in g.layers) for g in groups), base, tuple(drops),
                       (None,) * len(groups), oracle.evaluations - e0, time.perf_counter() - t0,
                       oracle.val.to_json(), record)


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
