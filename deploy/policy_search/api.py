"""`deploy.search`: the fastest per-layer policy whose PSNR_Y stays within a budget.

Same steps as `tools/search_policy.py` (which calls `search_with_setup` and writes files):
prepare + calibrate once, measure each group's a8w8 drop, MILP over the cost model, every
answer confirmed on a real quantized model.
"""
from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Mapping, Optional

from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource, require_source
from deploy.errors import SrdeployError
from deploy.policy_search import dual, fast_oracle, solver
from deploy.policy_search.solver import SearchError
from deploy.policy_search.config import SearchConfig
from deploy.policy_search.session import DEFAULT_PROFILE, Setup, measure_drops, provenance, setup  # noqa: F401
from deploy.policy_search.space import NARROW, WIDE



class BudgetImpossible(SrdeployError):
    """Even the reference-width model misses the target; the best policy found was written
    (`file`). Not bad input: no policy meets the budget (`value`, dB); CLIs exit with 3."""
    exit_code = 3


@dataclasses.dataclass(frozen=True, repr=False)
class SearchOutcome:
    """A search's answer: the policy, whether it meets the budget, and every candidate tried.

    `to_json()` is the search record (what `search_policy.py` writes beside the policy),
    `save(path)` writes it; `policy.save(path)` writes the policy itself."""
    policy: Policy
    feasible: bool
    psnr_y: float
    predicted_ms: float
    candidates: tuple[Mapping[str, Any], ...]
    report: Mapping[str, Any]

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        return brief_repr(self, policy=self.policy, feasible=self.feasible, psnr_y=round(self.psnr_y, 4),
                          predicted_ms=round(self.predicted_ms, 4), candidates=len(self.candidates))

    def to_json(self) -> dict[str, Any]:
        import json
        return json.loads(json.dumps(dict(self.report), default=str))

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the search record (`to_json()`) at `path`, atomically."""
        from deploy._results import save_json
        return save_json(self.to_json(), path, overwrite=overwrite)


def search(source: ModelSource, config: Optional[SearchConfig] = None, *, budget_db: Optional[float] = None,
           progress: bool = False) -> SearchOutcome:
    """Minimum predicted latency on `config.device_profile` with PSNR_Y >= reference - budget_db,
    or (`config.latency_budget_ms` instead) the best PSNR_Y whose predicted latency fits that budget.

    Args:
        source: from `deploy.load_model`.
        config: a `deploy.SearchConfig` (default: all defaults): device profile, reference,
            input size, photos, oracle, drops, numerics, NPU target, workers/cluster, ...
            (deploy/policy_search/config.py); checked when it is made, stored in the report.
        budget_db: the allowed PSNR_Y loss (dB, >= 0), a shortcut for `config.budget_db`.
        progress: show progress bars.
    Returns:
        A frozen `SearchOutcome`; `.feasible` is False when even all-a16w8 misses the budget
        (the policy is then the best found, all a16w8); `report["config"]` is `config.to_json()`.
    Raises:
        deploy.errors.SrdeployError: no budget or both budgets, a negative budget, an unknown
            profile, reference or enum value (raised by `SearchConfig`), or a sensitivity file
            of another model.
    """
    require_source(source)
    if config is None:
        config = SearchConfig()
    elif not isinstance(config, SearchConfig):
        raise SearchError(f"config must be a deploy.SearchConfig, not {type(config).__name__}", option="config")
    if budget_db is not None:
        config = config.replace(budget_db=budget_db)
    if config.budget_db is None and config.latency_budget_ms is None:
        raise SearchError("pass budget_db (fastest within a PSNR loss) or latency_budget_ms (best PSNR "
                          "within a latency), one of them", option="budget_db")
    s = setup(source, config)
    try:
        if config.latency_budget_ms is not None:
            return dual_with_setup(s, progress=progress)
        return search_with_setup(s, progress=progress)
    finally:
        s.close()


def search_with_setup(s: Setup, *, progress: bool = False) -> SearchOutcome:
    """The search on an existing session, with its config's budget, reference, max_evals and
    sensitivity file (`s.with_run(budget_db=...)` for another budget on the same session)."""
    c = s.config
    if c.budget_db is None:
        raise SearchError("the search needs a budget_db in its SearchConfig", option="budget_db")
    budget_db, reference, max_evals, sensitivity_file = c.budget_db, c.reference, c.max_evals, c.sensitivity_file
    run, band = _run_oracle(s, budget_db)  # uniform a8w8 is the fastest: if it meets the budget, no drops
    b = budget_db
    if isinstance(s.oracle, fast_oracle.FastOracle) and not band:  # the simulation searches alone
        b = max(0.0, budget_db - fast_oracle.SIMULATION_MARGIN_DB)
    enough = sensitivity_file is None and _narrow_meets(run, reference, b)
    sens_evals, drops, how = (0, [0.0] * len(s.groups), None) if enough else _drops(s, progress, sensitivity_file)
    prob = s.problem(drops)
    min_gain = _min_gain(s, band)
    result = solver.search(run, prob, budget_db=b, reference=reference, max_evals=max_evals, progress=progress,
                           min_gain=min_gain)
    judged = fast_oracle.confirm(s.oracle, result, budget_db=budget_db, reference=reference, band=band)
    rounds = 1
    while (judged is not None and not judged["within_budget_on_litert"] and not band
           and rounds < fast_oracle.ROUNDS):
        # simulation-only search (LiteRT too slow to decide candidates): tighten by the miss
        b -= judged["litert_target_psnr_y"] - judged["litert_psnr_y"] + fast_oracle.ROUND_MARGIN_DB
        if b < 0:
            break
        if enough:  # uniform a8w8 met the budget on the simulation only: the drops are needed now
            sens_evals, drops, how = _drops(s, progress, sensitivity_file)
            prob, enough = s.problem(drops), False
        previous = result
        result = solver.search(run, prob, budget_db=b, reference=reference, max_evals=max_evals,
                               progress=progress, min_gain=min_gain)
        result.evaluations += previous.evaluations
        result.history = previous.history + result.history
        judged = fast_oracle.confirm(s.oracle, result, budget_db=budget_db, reference=reference, band=band)
        rounds += 1
    if judged is not None:
        judged.update({"rounds": rounds, "simulation_budget_db": round(b, 4)})
    judge = getattr(s.oracle, "judge", s.oracle)
    if judged is not None and not judged["within_budget_on_litert"]:
        # the simulation's answer misses the budget on real integer models: search again with
        # every candidate measured on LiteRT (the drops stay the fast ones: they only steer)
        judged["fallback"] = (f"the fast oracle's answer reaches {judged['litert_psnr_y']:.3f} dB on LiteRT, "
                              f"below the target {judged['litert_target_psnr_y']:.3f} dB by more than "
                              f"{fast_oracle.TOLERANCE_DB} dB: searched again on LiteRT")
        fast_result = result
        result = solver.search(judge, prob, budget_db=budget_db, reference=reference,
                               max_evals=max_evals, progress=progress, min_gain=_min_gain(s, band))
        result.evaluations += fast_result.evaluations
        result.history = fast_result.history + result.history
    policy = s.oracle.policy(result.assignment)
    uniform = {p: prob.latency_ms((int(p == WIDE),) * prob.n) for p in (NARROW, WIDE)}
    report = {**result.to_json(), "budget_db": budget_db, "device_profile": s.profile_label,
              "policy": policy.to_json(), "predicted_ms_uniform": {k: round(v, 4) for k, v in uniform.items()},
              "ratio_to_int8": round(result.best.ms / uniform[NARROW], 4),
              "ratio_to_a16w8": round(result.best.ms / uniform[WIDE], 4),
              "sensitivity_evaluations": sens_evals, "drops": how, "validation": s.oracle.val.to_json(),
              **({"sensitivity_skipped": "uniform a8w8 meets the budget"} if enough else {}),
              "oracle": s.oracle.kind, "budget_on": s.oracle.budget_on,
              # measured on the judge (LiteRT, or the emulated NPU) whatever the oracle: the worst image's loss vs the reference
              "worst_image": judge.worst_loss(result.assignment),
              **({"litert_check": judged} if judged is not None else {}),
              "calibration": s.oracle.calib.to_json(), **provenance(s)}
    if judged is not None and "fallback" not in judged:  # the numbers users read: LiteRT's
        report.update({"fast_psnr_y": report["psnr_y"], "fast_reference_psnr_y": report["reference_psnr_y"],
                       "psnr_y": judged["litert_psnr_y"], "reference_psnr_y": judged["litert_reference_psnr_y"],
                       "target_psnr_y": judged["litert_target_psnr_y"]})
    predicted = result.best.ms
    if s.npu is not None:  # the chosen policy compiled for real, priced on its actual placement
        npu = s.npu.check(result.assignment, s.build_deployed(result.assignment))
        predicted = npu["predicted_ms_placed"]
        report.update({"npu": npu, "predicted_ms": round(predicted, 4), "predicted_ms_linear": round(result.best.ms, 4),
                       "ratio_to_int8": round(predicted / uniform[NARROW], 4),
                       "ratio_to_a16w8": round(predicted / uniform[WIDE], 4)})
    return SearchOutcome(policy, result.feasible, report["psnr_y"], predicted,
                         tuple(types.MappingProxyType(c) for c in report["history"]),
                         types.MappingProxyType(report))


def dual_with_setup(s: Setup, *, progress: bool = False) -> SearchOutcome:
    """The dual search (best PSNR_Y within a predicted latency) on an existing session, with its
    config's latency budget, reference, max_evals and sensitivity file."""
    c = s.config
    if c.latency_budget_ms is None:
        raise SearchError("the dual search needs a latency_budget_ms in its SearchConfig", option="latency_budget_ms")
    latency_budget_ms, reference, max_evals, sensitivity_file = (c.latency_budget_ms, c.reference, c.max_evals,
                                                                 c.sensitivity_file)
    dual.check_budget(s.problem([0.0] * len(s.groups)), latency_budget_ms)  # before the drops' minutes
    sens_evals, drops, how = _drops(s, progress, sensitivity_file)
    prob = s.problem(drops)
    # an NPU judge: simulated values moved onto its numerics (a view; the session's oracle unchanged)
    run = s.oracle.aligned() if isinstance(s.oracle, fast_oracle.FastOracle) else s.oracle
    result = dual.best_within(run, prob, latency_budget_ms=latency_budget_ms, reference=reference,
                              max_evals=max_evals, progress=progress)
    judge = getattr(s.oracle, "judge", s.oracle)
    policy = s.oracle.policy(result.assignment)
    report = {**result.to_json(), "device_profile": s.profile_label, "policy": policy.to_json(),
              "predicted_ms_uniform": {p: round(prob.latency_ms((int(p == WIDE),) * prob.n), 4) for p in (NARROW, WIDE)},
              "sensitivity_evaluations": sens_evals, "drops": how, "validation": s.oracle.val.to_json(),
              "worst_image": judge.worst_loss(result.assignment), "calibration": s.oracle.calib.to_json(),
              **provenance(s)}
    predicted = result.best.ms
    if s.npu is not None:  # the chosen policy compiled for real, priced on its actual placement
        npu = s.npu.check(result.assignment, s.build_deployed(result.assignment))
        predicted = npu["predicted_ms_placed"]
        report.update({"npu": npu, "predicted_ms": round(predicted, 4), "predicted_ms_linear": round(result.best.ms, 4),
                       "within_latency_budget_placed": bool(predicted <= latency_budget_ms + 1e-9)})
    return SearchOutcome(policy, True, report["psnr_y"], predicted,
                         tuple(types.MappingProxyType(c) for c in report["history"]),
                         types.MappingProxyType(report))


def _drops(s: Setup, progress: bool, sensitivity_file) -> tuple[int, tuple[float, ...], dict]:
    sens = measure_drops(s, progress, sensitivity_file)  # pure simulation (not armed)
    how = {**sens.method, "file": str(sensitivity_file)} if sensitivity_file else sens.method
    return sens.evaluations, sens.drop_db, how


def _run_oracle(s: Setup, budget_db: float):
    """The oracle one search asks, and whether LiteRT decides candidates near the target: a
    fast oracle's `for_search` view (LiteRT's target; near-target candidates decided on LiteRT
    where LiteRT is cheap), a LiteRT oracle as it is."""
    if isinstance(s.oracle, fast_oracle.FastOracle):
        run = s.oracle.for_search(budget_db)
        return run, run.band
    return s.oracle, True


def _min_gain(s: Setup, band: bool) -> float:
    """Every candidate (MILP solution, refinement flip) where candidates are cheap (the
    exhaustive optimum); only those worth `REFINE_MIN_GAIN` of latency where the simulation
    searches alone (seconds each)."""
    slow = isinstance(s.oracle, fast_oracle.FastOracle) and not band
    return fast_oracle.REFINE_MIN_GAIN if slow else 0.0


def _narrow_meets(oracle, reference: str, budget_db: float) -> bool:
    ref = oracle.psnr(oracle.uniform(WIDE)) if reference == WIDE else oracle.float_psnr()
    return oracle.psnr(oracle.uniform(NARROW)) >= ref - budget_db - 1e-9
