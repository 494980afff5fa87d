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


def check_output(path: str | Path, inputs: Iterable[str | Path | None] = (), *,
                 overwrite: bool = False, flag: str = "--json") -> None:
    """The output-path rule (the harness's own copy: it never imports deploy): never one of the
    command's inputs, never a directory, an existing file only with --overwrite."""
    p = Path(path)
    for i in inputs:
        if i is not None and Path(i).resolve() == p.resolve():
            raise errors.HarnessError(f"{flag} {p} is also an input of this command ({i}); writing "
                                      "it would destroy it: choose another file name")
    if p.is_dir():
        raise errors.HarnessError(f"{flag} {p} is a directory; give a file name")
    if p.exists() and not overwrite:
        raise errors.HarnessError(f"{p} exists: pass --overwrite to replace it")


class ResultsFile:
    """Append-only JSONL with one lock; refuses to clobber unless told (--resume/--overwrite).

    On --resume, unreadable lines (a torn last line from a killed run, corrupt bytes) are
    counted in ``bad_lines`` (line numbers), copied to ``<results>.bad`` and never merged with
    new records: appending after a torn line starts on a new line."""

    def __init__(self, path: str | Path, *, resume: bool = False, overwrite: bool = False,
                 inputs: Iterable[str | Path] = ()):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.previous: list[dict[str, Any]] = []
        self.bad_lines: list[int] = []
        self.check(self.path, resume=resume, overwrite=overwrite, inputs=inputs)
        if self.path.exists() and self.path.stat().st_size:
            if overwrite:
                self.path.unlink()
            else:
                bad: list[tuple[int, bytes]] = []
                self.previous = list(read_records(self.path, bad=bad))
                self.bad_lines = [n for n, _ in bad]
                if bad:
                    with open(self.bad_path, "ab") as f:
                        f.writelines(raw.rstrip(b"\r\n") + b"\n" for _, raw in bad)
                with open(self.path, "rb+") as f:  # a torn last line: new records start below it
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        f.write(b"\n")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def bad_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bad")

    @staticmethod
    def check(path: Path, *, resume: bool, overwrite: bool, inputs: Iterable[str | Path] = ()) -> None:
        """Fail fast (before any phone is touched) if we would clobber earlier results or an input."""
        check_output(path, inputs, overwrite=True, flag="--results")
        if Path(path).parent.exists() and not Path(path).parent.is_dir():
            raise errors.HarnessError(f"--results {path}: {Path(path).parent} is a file, not a folder")
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


def read_records(path: str | Path, bad: list[tuple[int, bytes]] | None = None
                 ) -> Iterable[dict[str, Any]]:
    """Yield the records, line by line. A line that is not a JSON object (torn by a power cut
    mid-write, corrupt or non-UTF-8 bytes) is skipped, never fatal; pass ``bad`` to collect
    those as (1-based line number, raw bytes)."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                rec = None
            if isinstance(rec, dict):
                yield rec
            elif bad is not None:
                bad.append((number, raw))


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
