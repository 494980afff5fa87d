"""`deploy.search`: the fastest per-layer policy whose PSNR_Y stays within a budget.

Same steps as `tools/search_policy.py` (which calls `search_with_setup` and writes files):
prepare + calibrate once, measure each group's a8w8 drop, MILP over the cost model, every
answer confirmed on a real quantized model.
"""
from __future__ import annotations

import contextlib

import dataclasses
import types
from pathlib import Path
from typing import Any, Mapping, Optional

from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource, require_source
from deploy.errors import SrdeployError
from deploy.policy_search import dual, fast_oracle, solver
from deploy.policy_search.solver import SearchError
from deploy.policy_search.session import DEFAULT_PROFILE, Setup, measure_drops, provenance, setup
from deploy.policy_search.space import NARROW, WIDE

from deploy.data.io_convention import DEFAULT_INPUT_HW  # noqa: E402 - the default LR input size


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


def search(source: ModelSource, *, budget_db: Optional[float] = None, device_profile: str = DEFAULT_PROFILE,
           reference: str = "a16w8", input_size: tuple[int, int] = DEFAULT_INPUT_HW,
           max_evals: int = 60, calib_dir: Optional[str | Path] = None, calib_images: int = 8,
           val_dir: Optional[str | Path] = None, val_images: int = 5,
           sensitivity_file: Optional[str | Path] = None, progress: bool = False,
           npu: Optional[str] = None, npu_cache_dir: Optional[str | Path] = None,
           oracle: str = "fast", budget_on: str = "mean", workers: int = 1,
           cluster: Optional[str] = None, drops: str = "auto", numerics: str = "auto",
           latency_budget_ms: Optional[float] = None, val_patch: Optional[tuple[int, int]] = None) -> SearchOutcome:
    """Minimum predicted latency on `device_profile` with PSNR_Y >= reference - `budget_db`, or
    (`latency_budget_ms` instead) the best PSNR_Y whose predicted latency fits that budget.

    Args:
        source: from `deploy.load_model`.
        budget_db: allowed PSNR_Y loss (dB) on the validation patches, >= 0.
        latency_budget_ms: or the dual: the best PSNR_Y within this predicted latency
            (deploy/policy_search/dual.py); one of the two budgets, not both.
        device_profile: a shipped profile name (`deploy.latency.device_profiles.known_profiles()`).
        reference: `a16w8` or `float`: what the budget is measured from.
        input_size: the fixed LR input size of the deployed model (latency, NPU placement).
        val_patch: the LR patch size quality is judged on (default: `input_size` up to 128x128
            pixels, else 64x64: a video frame is judged on patches of the same weights).
        max_evals: most candidate models measured by the search phase.
        calib_dir, calib_images: calibration photos (default: the shipped set).
        val_dir, val_images: validation photos (default: the shipped set).
        sensitivity_file: reuse a `--sensitivity` JSON of the same model and validation set.
        progress: show progress bars.
        npu: an NPU compile target (e.g. "qualcomm:SM8650"): the cost model prices each op where
            the compiler places it (CPU fallbacks, NPU<->CPU switches), and the chosen policy is
            compiled for real; its placement is in `report["npu"]`.
        npu_cache_dir: keep compile reports there (by model sha256) for later runs.
        oracle: "fast" (default): sensitivity and candidates measured on simulated quantization
            (deploy/convert/fake_quant.py), the answer confirmed on LiteRT and the search redone
            on LiteRT if it misses the budget there; "litert": every
            candidate built and measured on LiteRT.
        budget_on: "mean" (mean PSNR_Y over validation images) or "worst" (every validation
            image within `budget_db` of the reference).
        workers: processes measuring independent candidates (the sensitivity pass) on this
            machine; 0 = one per core, 1 = this process only. Same results either way.
        cluster: or a Dask scheduler address (e.g. "tcp://10.0.0.5:8786"; needs the `cluster`
            extra here and on the workers). `report["parallel"]` says how it ran.
        drops: "exact" (each group's drop simulated), "estimated" (from shared backward passes,
            deploy/policy_search/drop_estimate.py) or "auto" (estimated for the largest models
            only, deploy.policy_search.session.ESTIMATE_ABOVE_MACS). `report["drops"]` says which.
        numerics: what judges the budget: "cpu" (LiteRT's kernels), "npu" (the `npu` target's
            arithmetic in QNN HTP emulation: reference, answer and near-target candidates) or
            "auto" (npu with an `npu` target, else cpu). `report["numerics"]` says which.
    Returns:
        A frozen `SearchOutcome`; `.feasible` is False when even all-a16w8 misses the budget
        (the policy is then the best found, all a16w8).
    Raises:
        deploy.errors.SrdeployError: a negative budget, an unknown profile or reference, or a
            sensitivity file of another model.
    """
    from deploy.convert import args
    require_source(source)
    if (budget_db is None) == (latency_budget_ms is None):
        raise SearchError("pass budget_db (fastest within a PSNR loss) or latency_budget_ms (best PSNR "
                          "within a latency), one of them")
    if budget_db is not None:
        budget_db = args.number("budget_db", budget_db, minimum=0)
    else:
        latency_budget_ms = args.number("latency_budget_ms", latency_budget_ms, minimum=0)
    input_size = args.input_size(input_size, allow_none=False)
    for name, value in (("calib_images", calib_images), ("val_images", val_images), ("max_evals", max_evals)):
        args.count(name, value)
    args.count("workers", workers, minimum=0)
    s = setup(source, tuple(input_size), device_profile=device_profile, calib_dir=calib_dir,
              calib_images=calib_images, val_dir=val_dir, val_images=val_images, npu=npu,
              npu_cache_dir=npu_cache_dir, oracle=oracle, budget_on=budget_on, workers=workers,
              cluster=cluster, drops=drops, numerics=numerics,
              val_patch=None if val_patch is None else tuple(args.input_size(val_patch, allow_none=False)))
    try:
        if latency_budget_ms is not None:
            return dual_with_setup(s, latency_budget_ms=latency_budget_ms, reference=reference,
                                   max_evals=max_evals, progress=progress, sensitivity_file=sensitivity_file)
        return search_with_setup(s, budget_db=budget_db, reference=reference, max_evals=max_evals,
                                 progress=progress, sensitivity_file=sensitivity_file)
    finally:
        s.close()


def search_with_setup(s: Setup, *, budget_db: float, reference: str = "a16w8", max_evals: int = 60,
                      progress: bool = False, sensitivity_file: Optional[str | Path] = None) -> SearchOutcome:
    """The search on an existing session (the CLI reuses one session for several modes)."""
    set_reference(s.oracle, reference)
    with _armed(s, reference, budget_db):  # uniform a8w8 is the fastest: if it meets the budget, no drops
        b = budget_db
        if isinstance(s.oracle, fast_oracle.FastOracle) and not s.oracle.band:  # the simulation searches alone
            b = max(0.0, budget_db - fast_oracle.SIMULATION_MARGIN_DB)
        enough = sensitivity_file is None and _narrow_meets(s.oracle, reference, b)
    sens_evals, drops, how = (0, [0.0] * len(s.groups), None) if enough else _drops(s, progress, sensitivity_file)
    prob = s.problem(drops)
    result = _armed_search(s, prob, b, reference, max_evals, progress)
    judged = fast_oracle.confirm(s.oracle, result, budget_db=budget_db, reference=reference)
    rounds = 1
    while (judged is not None and not judged["within_budget_on_litert"] and not s.oracle.band
           and rounds < fast_oracle.ROUNDS):
        # simulation-only search (LiteRT too slow to decide candidates): tighten by the miss
        b -= judged["litert_target_psnr_y"] - judged["litert_psnr_y"] + fast_oracle.ROUND_MARGIN_DB
        if b < 0:
            break
        if enough:  # uniform a8w8 met the budget on the simulation only: the drops are needed now
            sens_evals, drops, how = _drops(s, progress, sensitivity_file)
            prob, enough = s.problem(drops), False
        previous = result
        result = _armed_search(s, prob, b, reference, max_evals, progress)
        result.evaluations += previous.evaluations
        result.history = previous.history + result.history
        judged = fast_oracle.confirm(s.oracle, result, budget_db=budget_db, reference=reference)
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
                               max_evals=max_evals, progress=progress, min_gain=_min_gain(s))
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


def dual_with_setup(s: Setup, *, latency_budget_ms: float, reference: str = "a16w8", max_evals: int = 60,
                    progress: bool = False, sensitivity_file: Optional[str | Path] = None) -> SearchOutcome:
    """The dual search (best PSNR_Y within a predicted latency) on an existing session."""
    set_reference(s.oracle, reference)
    dual.check_budget(s.problem([0.0] * len(s.groups)), latency_budget_ms)  # before the drops' minutes
    sens_evals, drops, how = _drops(s, progress, sensitivity_file)
    prob = s.problem(drops)
    aligned = isinstance(s.oracle, fast_oracle.FastOracle)
    if aligned:
        s.oracle.align()  # an NPU judge: simulated values moved onto its numerics
    try:
        result = dual.best_within(s.oracle, prob, latency_budget_ms=latency_budget_ms, reference=reference,
                                  max_evals=max_evals, progress=progress)
    finally:
        if aligned:
            s.oracle.disarm()
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


@contextlib.contextmanager
def _armed(s: Setup, reference: str, budget_db: float):
    """A fast oracle in search mode (LiteRT's target; near-target candidates decided on LiteRT
    where LiteRT is cheap) for the block; other oracles as they are."""
    armed = isinstance(s.oracle, fast_oracle.FastOracle)
    if armed:
        s.oracle.arm(reference, budget_db)
    try:
        yield
    finally:
        if armed:
            s.oracle.disarm()


def _armed_search(s: Setup, prob, budget_db: float, reference: str, max_evals: int, progress: bool):
    with _armed(s, reference, budget_db):
        return solver.search(s.oracle, prob, budget_db=budget_db, reference=reference,
                             max_evals=max_evals, progress=progress, min_gain=_min_gain(s))


def _min_gain(s: Setup) -> float:
    """Every candidate (MILP solution, refinement flip) where candidates are cheap (the
    exhaustive optimum); only those worth `REFINE_MIN_GAIN` of latency where the simulation
    searches alone (seconds each)."""
    slow = isinstance(s.oracle, fast_oracle.FastOracle) and not s.oracle.band
    return fast_oracle.REFINE_MIN_GAIN if slow else 0.0


def set_reference(oracle, reference: str) -> None:
    """What a worst-image budget is measured against (the oracle and its LiteRT judge)."""
    if reference not in solver.REFERENCES:
        raise solver.SearchError(f"reference must be one of {', '.join(solver.REFERENCES)}, not '{reference}'",
                                 option="reference", value=reference)
    for o in (oracle, getattr(oracle, "judge", None)):
        if o is not None:
            o.reference = reference


def _narrow_meets(oracle, reference: str, budget_db: float) -> bool:
    ref = oracle.psnr(oracle.uniform(WIDE)) if reference == WIDE else oracle.float_psnr()
    return oracle.psnr(oracle.uniform(NARROW)) >= ref - budget_db - 1e-9
