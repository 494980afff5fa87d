"""What a long background run shows while it runs: the validation curve (JSON + PNG) and a
progress file with the ETA, both in the run folder and both replaced atomically.

`val_history.json` survives resumes: entries past the step a run resumed from belong to the
lost segment and are dropped (the resumed run re-earns them, with the same values).
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Optional

from deploy._files import atomic_write


class ValCurve:
    """Validation PSNR_Y by step for one run folder; `png` redrawn at every `add`."""

    def __init__(self, run: Path, resumed_at: int, title: str, baseline: Optional[float] = None):
        self.json, self.png, self.title, self.baseline = run / "val_history.json", run / "val_curve.png", title, baseline
        old = json.loads(self.json.read_text()) if self.json.is_file() else []
        self.points: list[tuple[int, float]] = [(int(s), float(v)) for s, v in old if int(s) <= resumed_at]

    def add(self, step: int, psnr_y: float) -> None:
        self.points = [p for p in self.points if p[0] != step] + [(step, round(psnr_y, 4))]
        self.points.sort()
        atomic_write(self.json, json.dumps(self.points) + "\n")
        self._draw()

    def _draw(self) -> None:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
        fig = Figure(figsize=(6, 3.6), dpi=100)
        ax = fig.add_subplot()
        steps, vals = zip(*self.points)
        ax.plot(steps, vals, marker="o", markersize=3, label="model")
        if self.baseline is not None:
            ax.axhline(self.baseline, color="grey", linestyle="--", label=f"bicubic {self.baseline:.2f}")
        if len(vals) >= 3:  # the random init's score (step 0) would flatten the part worth reading
            seen = list(vals[1:]) + ([self.baseline] if self.baseline is not None else [])
            ax.set_ylim(min(seen) - 0.5, max(seen + [vals[0]]) + 0.5)
        ax.set(xlabel="step", ylabel="validation PSNR_Y (dB)", title=self.title)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        atomic_write(self.png, buf.getvalue())


class Progress:
    """`progress.json`: step, rate and ETA of the current invocation, for whoever checks on the run."""

    def __init__(self, run: Path, start_step: int, steps: int):
        self.file, self.start_step, self.steps, self.t0 = run / "progress.json", start_step, steps, time.time()

    def eta_seconds(self, step: int) -> Optional[float]:
        done = step - self.start_step
        return (time.time() - self.t0) / done * (self.steps - step) if done > 0 else None

    def write(self, step: int, **extra: object) -> None:
        eta = self.eta_seconds(step)
        info = {"step": step, "steps": self.steps, "eta_seconds": None if eta is None else round(eta),
                "steps_per_second": round((step - self.start_step) / max(time.time() - self.t0, 1e-9), 3),
                "updated": time.strftime("%Y-%m-%d %H:%M:%S"), **extra}
        atomic_write(self.file, json.dumps(info, indent=2) + "\n")
