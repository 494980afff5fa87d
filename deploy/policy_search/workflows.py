"""The per-layer sensitivity pass and the latency-vs-PSNR Pareto front, as library calls.

Why here and not in the CLI glue: a script, a test or a notebook gets the same workflow as
`tools/search_policy.py --sensitivity / --pareto`: `(source, SearchConfig) -> frozen result`,
whose `save(path)` writes the JSON and its PNG whole or not at all. The `*_with_setup` forms
run on an existing session (`session.setup`), as the CLI and the bench do.
"""
from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from deploy.convert.sources import ModelSource, require_source
from deploy.policy_search import pareto, sensitivity
from deploy.policy_search.config import SearchConfig
from deploy.policy_search.session import Setup, measure_drops, measured_cache, provenance, setup


def _png(path: Path, draw: Callable[[Path], None]) -> None:
    """Draw into a temp name beside `path`, then move it into place (never half a PNG)."""
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        draw(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _save(report: Mapping[str, Any], path: str | Path, draw: Callable[[Path], None], overwrite: bool) -> Path:
    from deploy._files import atomic_write
    path = Path(path)
    atomic_write(path, json.dumps(dict(report), indent=2) + "\n", overwrite=overwrite)
    _png(path.with_suffix(".png"), draw)
    return path


@dataclasses.dataclass(frozen=True, repr=False)
class SensitivityResult:
    """Every layer group's PSNR_Y drop at a8w8 (rest a16w8) and gain at a16w8 (rest a8w8).

    `report` is the `--sensitivity` JSON (a later search reuses it: `sensitivity_file`);
    `save(path)` writes it and the bar chart beside it (`path` with .png)."""
    sensitivity: sensitivity.Sensitivity
    report: Mapping[str, Any]

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        s = self.sensitivity
        return brief_repr(self, model=s.model, scale=s.scale, groups=len(s.groups), evaluations=s.evaluations)

    def table(self) -> str:
        return self.sensitivity.table()

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dict(self.report), default=str))

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        return _save(self.report, path, lambda p: sensitivity.plot(self.sensitivity, p), overwrite)


@dataclasses.dataclass(frozen=True, repr=False)
class ParetoFront:
    """Measured policies over a sweep of loss budgets, the non-dominated ones marked
    (`on_front`); a fast oracle's front judged on LiteRT too. `save(path)` writes the JSON and
    the plot beside it."""
    report: Mapping[str, Any]

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        points = self.report.get("points", [])
        return brief_repr(self, model=self.report.get("model"), points=len(points),
                          on_front=sum(1 for p in points if p.get("on_front")))

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dict(self.report), default=str))

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        return _save(self.report, path, lambda p: pareto.plot(dict(self.report), p), overwrite)


def sensitivity_with_setup(s: Setup, *, progress: bool = False) -> SensitivityResult:
    """Both directions for every group on `s` (measurements land in `s.config.sens_cache` as
    they come, so an interrupted run resumes; the cache is removed once all are in)."""
    from deploy.provenance import with_provenance
    cache = measured_cache(s)
    sens = sensitivity.measure(s.oracle, s.groups, s.macs, progress=progress, cache=cache, evaluator=s.evaluator)
    report = with_provenance({**sens.to_json(), **provenance(s)}, calibration=s.oracle.calib.to_json(),
                             validation=s.oracle.val.to_json())
    if cache is not None:
        cache.remove()  # everything is in the result now
    return SensitivityResult(sens, types.MappingProxyType(report))


def pareto_with_setup(s: Setup, *, progress: bool = False) -> ParetoFront:
    """`s.config.pareto_points` loss budgets swept on `s` (drops measured, or reused from
    `s.config.sensitivity_file`)."""
    from deploy.provenance import with_provenance
    c = s.config
    sens = measure_drops(s, progress, c.sensitivity_file)
    prob = s.problem(sens.drop_db)
    cands = pareto.sweep(s.oracle, prob, n_budgets=c.pareto_points, progress=progress)
    float_ms = s.cost.predict_ms({l: "float" for l in s.prep.layers})
    front = pareto.front_json(s.oracle, prob, cands, float_ms=float_ms, device_profile=s.profile_label)
    front = pareto.confirm_on_litert(front, s.oracle, prob, cands, progress=progress)
    front = with_provenance({**front, **provenance(s)},
                            calibration=s.oracle.calib.to_json(), validation=s.oracle.val.to_json())
    if s.sens_cache is not None:
        s.sens_cache.unlink(missing_ok=True)
    return ParetoFront(types.MappingProxyType(front))


def _with_session(source: ModelSource, config: Optional[SearchConfig], run: Callable[[Setup], Any]) -> Any:
    require_source(source)
    s = setup(source, config if config is not None else SearchConfig())
    try:
        return run(s)
    finally:
        s.close()


def measure_sensitivity(source: ModelSource, config: Optional[SearchConfig] = None, *,
                        progress: bool = False) -> SensitivityResult:
    """Per-layer sensitivity of `source` as `config` says (photos, oracle, budget_on, ...)."""
    return _with_session(source, config, lambda s: sensitivity_with_setup(s, progress=progress))


def pareto_front(source: ModelSource, config: Optional[SearchConfig] = None, *,
                 progress: bool = False) -> ParetoFront:
    """The latency-vs-PSNR Pareto front of `source` as `config` says (`pareto_points` budgets)."""
    return _with_session(source, config, lambda s: pareto_with_setup(s, progress=progress))
