"""Latency rows from the harness's JSON-lines records (schema: docs/HARNESS.md), with predictions.

deploy/ never imports android_harness: the two meet in that public record schema, read here.
One row per (device, backend, delegate, threads, model): the last `summary` record of the job
(a `--resume` supersedes earlier ones), else a median over its `trial` records.
"""
from __future__ import annotations

import dataclasses
import statistics
from typing import Iterable, Mapping, Optional

NO_COST_MODEL = "no cost model"


@dataclasses.dataclass(frozen=True)
class LatencyRow:
    device: str
    backend: str
    delegate: str
    threads: Optional[int]
    variant: str
    median_ms: float
    min_ms: float
    max_ms: float
    spread_pct: Optional[float]
    trials: str  # "ok/asked"
    coverage: str
    throttled: bool
    from_summary: bool
    predicted: str  # a number in ms, or why there is none


def _device_label(dev: Mapping) -> str:
    label = dev.get("label") or dev.get("model") or dev.get("serial") or "?"
    soc = dev.get("soc")
    return f"{label} ({soc})" if soc and soc not in label else label


def _coverage(cov: Optional[Mapping]) -> str:
    if not cov:
        return "none reported"
    frac = cov.get("fraction")
    nodes = (f" {cov['nodes_delegated']}/{cov['nodes_total']} nodes"
             if cov.get("nodes_delegated") is not None and cov.get("nodes_total") else "")
    return f"{cov.get('delegate', '?')}{nodes}" + (f" ({frac:.0%})" if frac is not None else "")


def _from_trials(trials: list[Mapping]) -> Optional[dict]:
    avgs = [t["stats"]["inference_avg_us"] for t in trials
            if (t.get("stats") or {}).get("inference_avg_us") is not None]
    if not avgs:
        return None
    med = statistics.median(avgs)
    return {"median_inference_us": med, "min_trial_inference_us": min(avgs),
            "max_trial_inference_us": max(avgs),
            "spread_pct": 100.0 * (max(avgs) - min(avgs)) / med if med else None,
            "trials_ok": len(avgs), "trials": trials[-1].get("trials"),
            "throttled": any((t.get("thermal") or {}).get("throttled") for t in trials),
            "coverage": (trials[-1].get("stats") or {}).get("coverage")}


def predicted_for(predictions: Optional[Mapping], device: Mapping, delegate: str, variant: str,
                  threads: Optional[int] = None) -> str:
    """The cost model's prediction for this row, or why there is none.

    predictions.json: {"available": bool, "why": str, "profiles": {profile: {"match": {...},
    "ms": {variant: float}}}}; a profile applies to a row when every key of its `match`
    (e.g. {"delegate": "gpu", "soc": "SM8550"}) equals the row's device/config field.
    """
    if not predictions or not predictions.get("available"):
        return NO_COST_MODEL
    fields = {**{k: str(v) for k, v in device.items() if isinstance(v, (str, int))}, "delegate": delegate,
              "num_threads": str(threads)}
    for name, prof in (predictions.get("profiles") or {}).items():
        match = prof.get("match") or {}
        if all(fields.get(k) == str(v) for k, v in match.items()) and variant in prof.get("ms", {}):
            return f"{prof['ms'][variant]:.2f} ({name})"
    return "no matching profile"


def rows(records: Iterable[Mapping], variant_of_sha: Mapping[str, str],
         predictions: Optional[Mapping] = None) -> list[LatencyRow]:
    """Records already validated (schema 1, one of the report's models) -> one row per job."""
    jobs: dict[str, dict] = {}
    for r in records:
        cfg = r.get("config") or {}
        key = r.get("job") or repr(((r.get("device") or {}).get("serial"), r["model"]["sha256"],
                                    sorted(cfg.items()), r.get("backend")))
        j = jobs.setdefault(key, {"first": r, "trials": [], "summary": None})
        if r["kind"] == "summary":
            j["summary"] = r  # the last one wins (--resume)
        elif r["kind"] == "trial" and (r.get("stats") or {}).get("inference_avg_us") is not None:
            j["trials"].append(r)
    out = []
    for j in jobs.values():
        r0 = j["first"]
        s = j["summary"] if j["summary"] and j["summary"].get("median_inference_us") else None
        stats = s or _from_trials(j["trials"])
        if stats is None:
            continue
        cfg, dev = r0.get("config") or {}, r0.get("device") or {}
        variant = variant_of_sha[r0["model"]["sha256"]]
        delegate = str(cfg.get("delegate", "?"))
        out.append(LatencyRow(
            _device_label(dev), str(r0.get("backend", "?")), delegate, cfg.get("num_threads"), variant,
            stats["median_inference_us"] / 1e3, stats["min_trial_inference_us"] / 1e3,
            stats["max_trial_inference_us"] / 1e3, stats.get("spread_pct"),
            f"{stats.get('trials_ok', '?')}/{stats.get('trials') or '?'}", _coverage(stats.get("coverage")),
            bool(stats.get("throttled")), s is not None,
            predicted_for(predictions, dev, delegate, variant, cfg.get("num_threads"))))
    order = {"float": 0, "int8": 1, "a16w8": 2, "policy": 3}
    return sorted(out, key=lambda r: (r.device, r.backend, r.delegate, order.get(r.variant, 9)))
