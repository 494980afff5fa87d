"""The result records (a public contract, docs/HARNESS.md) and the JSON-lines file they go to.

Why JSON lines, appended and fsync'ed per trial: a phone that dies in trial 7 must not take
trials 1-6 with it, and ``--resume`` can skip what is already on disk. ``deploy`` reads these
records (the two packages meet only here); every record carries ``schema_version``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import statistics
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

from android_harness import errors

SCHEMA_VERSION = 1


def job_key(device_serial: str, model_sha256: str, config: Mapping[str, Any],
            backend: str) -> str:
    """Identifies one (device, model, config, backend) job across runs, for --resume."""
    blob = json.dumps([device_serial, model_sha256, dict(config), backend], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def base_record(kind: str, **fields: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "kind": kind, "time": now(), **fields}


def summarize(trials: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Median and spread across trials of each trial's mean latency (not across samples)."""
    avgs = [t["stats"]["inference_avg_us"] for t in trials
            if t["stats"].get("inference_avg_us") is not None]
    if not avgs:
        return {"trials_ok": 0}
    med = statistics.median(avgs)
    return {
        "trials_ok": len(avgs),
        "median_inference_us": med,
        "min_trial_inference_us": min(avgs),
        "max_trial_inference_us": max(avgs),
        "spread_pct": 100.0 * (max(avgs) - min(avgs)) / med if med else None,
        "stdev_across_trials_us": statistics.stdev(avgs) if len(avgs) > 1 else 0.0,
        "median_init_us": statistics.median(
            [t["stats"]["init_us"] for t in trials if t["stats"].get("init_us") is not None]
            or [float("nan")]),
        "throttled": any(t.get("thermal", {}).get("throttled") for t in trials),
        "coverage": trials[-1]["stats"].get("coverage"),
    }


class ResultsFile:
    """Append-only JSONL with one lock; refuses to clobber unless told (--resume/--overwrite)."""

    def __init__(self, path: str | Path, *, resume: bool = False, overwrite: bool = False):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.previous: list[dict[str, Any]] = []
        self.check(self.path, resume=resume, overwrite=overwrite)
        if self.path.exists() and self.path.stat().st_size:
            if overwrite:
                self.path.unlink()
            else:
                self.previous = list(read_records(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def check(path: Path, *, resume: bool, overwrite: bool) -> None:
        """Fail fast (before any phone is touched) if we would clobber earlier results."""
        if Path(path).exists() and Path(path).stat().st_size and not (resume or overwrite):
            raise errors.HarnessError(f"results file {path} exists: pass --resume to continue "
                                      "it or --overwrite to start over")

    def done_trials(self, job: str) -> list[dict[str, Any]]:
        return [r for r in self.previous
                if r.get("kind") == "trial" and r.get("job") == job and r.get("status") == "ok"]

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, default=str)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_records(path: str | Path) -> Iterable[dict[str, Any]]:
    """Yield records; a torn last line (power cut mid-write) is skipped, not fatal."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def format_table(summaries: list[Mapping[str, Any]]) -> str:
    """The terminal table: one row per job."""
    head = ("DEVICE", "SERIAL", "MODEL", "DELEGATE", "TRIALS", "MEDIAN ms", "SPREAD %", "COVERAGE",
            "THROTTLED")
    rows = [head]
    for s in summaries:
        cov = s.get("coverage") or {}
        frac = cov.get("fraction")
        cov_s = "-" if frac is None else f"{100 * frac:.0f}% ({cov.get('partitions')}p)"
        med = s.get("median_inference_us")
        spread = s.get("spread_pct")
        rows.append((s["device"].get("label", "?"), s["device"].get("serial", "?"),
                     s["model"]["name"], s["config"]["delegate"],
                     f"{s.get('trials_ok', 0)}/{s.get('trials', s.get('trials_ok', 0))}",
                     "-" if med is None else f"{med / 1000:.3f}",
                     "-" if spread is None else f"{spread:.1f}", cov_s,
                     "yes" if s.get("throttled") else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
