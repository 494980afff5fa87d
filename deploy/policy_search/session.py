"""One search session: the model prepared, calibrated and costed once, then asked many times.

`setup(source, SearchConfig)` checks the cheap inputs first (profile names, files), then prepares
and calibrates;
`measure_drops` measures (or reuses, after checking) each group's a16w8 -> a8w8 drop.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional, Sequence

from deploy.convert import per_layer as hybrid
from deploy.convert import twin
from deploy.convert.sources import ModelSource
from deploy.data import calibration
from deploy.errors import UserInputError
from deploy.latency import cost_model
from deploy.latency import npu_cost
from deploy.latency.device_profiles import DEFAULT_PROFILE  # the search's default, re-exported
from deploy.policy_search import fast_oracle
from deploy.policy_search import npu_judge
from deploy.policy_search import oracle as quality_oracle
from deploy.policy_search import parallel
from deploy.policy_search import sensitivity
from deploy.policy_search import solver
from deploy.policy_search.config import DROPS, RUN_FIELDS, SearchConfig  # noqa: F401 - DROPS re-exported
from deploy.policy_search.space import Group, Problem, make_groups

#: --drops "auto": estimated where the exact drops would simulate more than ESTIMATE_ABOVE_MACS
#: multiply-accumulates (groups x patches x model MACs; EDSR-baseline x3 1.0e13, x4 1.3e13:
#: minutes on 2 cores; every other zoo model <= 2.1e11)
ESTIMATE_ABOVE_MACS = 1e12


@dataclasses.dataclass(frozen=True)
class Setup:
    """A model prepared, calibrated and costed once for `config`; frozen for the run (the
    oracle's caches fill as it measures, nothing else changes)."""
    src: ModelSource
    prep: hybrid.Prepared
    groups: tuple[Group, ...]
    oracle: quality_oracle.QualityOracle
    cost: Any  # deploy.latency.CostModel
    macs: dict[str, int]
    profile_label: str
    npu: Any = None  # deploy.latency.npu_cost.NpuCostModel with an NPU target (--npu), else None
    #: where candidates are measured (--workers / --cluster); None: this process
    parallel: Optional[parallel.Plan] = None
    #: the model at the deployed input size when quality is judged on smaller patches (a video
    #: frame: latency and NPU placement at 640x360, PSNR on 64x64 patches); None: the same as `prep`
    deployed: Optional[hybrid.Prepared] = None
    #: every option of the run (budget, reference, drops, sensitivity cache, ...)
    config: SearchConfig = SearchConfig()
    #: the evaluator `parallel` made for `oracle` (None: candidates measured in this process)
    evaluator: Optional[parallel.Evaluator] = None
    #: False when the caller passed `parallel` in (`setup(..., plan=)`): the caller closes it
    owns_parallel: bool = True
    #: what `config.ptq` did to the model (CLE pairs, ranges changed...), or None
    ptq_report: Optional[dict] = None

    @property
    def drops(self) -> str:
        return self.config.drops

    @property
    def sens_cache(self) -> Optional[Path]:
        return None if self.config.sens_cache is None else Path(self.config.sens_cache)

    @property
    def deployed_hw(self) -> tuple[int, int]:
        return tuple((self.deployed or self.prep).input_shape[1:3])

    def with_run(self, **changes: Any) -> "Setup":
        """The same session for another run (budget, max_evals, sensitivity file or cache):
        the prepared model and the oracle's measurements are reused; what a PSNR depends on
        cannot change here (set up again for that)."""
        bad = sorted(set(changes) - set(RUN_FIELDS))
        if bad:
            raise UserInputError(f"{', '.join(bad)} change what is measured: set up a new session",
                                 option=bad[0])
        return dataclasses.replace(self, config=self.config.replace(**changes))

    def build_deployed(self, a) -> bytes:
        """The policy's quantized model at the deployed input size (for compiling and pricing):
        the patch model itself, or the frame-size twin quantized with the patches' ranges (same
        tensor names; ranges do not change where ops are placed)."""
        return _build_deployed(self.oracle, self.deployed, a)

    def problem(self, drop_db: Sequence[float]) -> Problem:
        return solver.problem_from(self.cost, self.groups, drop_db)

    def close(self) -> None:
        """Stop worker processes and leave the Dask scheduler (the session can still measure
        in this process afterwards)."""
        if self.evaluator is not None:
            self.evaluator.close()
        if self.parallel is not None and self.owns_parallel:
            self.parallel.close()


def _build_deployed(oracle, deployed: Optional[hybrid.Prepared], a) -> bytes:
    if deployed is None:
        return oracle.build(a)[0]
    pol = oracle.policy(a)
    return hybrid.quantize_policy(deployed, pol, oracle.calib, qsv=oracle.qsv_for(pol), smoke=False)[0]


def setup(src: ModelSource, config: SearchConfig, *, plan: Optional[parallel.Plan] = None) -> Setup:
    """Check what is cheap first (profile names, files, the NPU tools, the scheduler), then
    prepare and calibrate once, as `config` says.

    With `config.npu` (e.g. "qualcomm:SM8650") the cost model takes which ops the compiler places
    on the NPU from compiling the uniform a8w8/a16w8 models (deploy.latency.npu_cost); compile
    reports are cached under `config.npu_cache_dir` when given. Independent candidates are
    measured where `plan` says (default: `parallel.plan(config.workers, config.cluster)`, a
    process pool or a Dask cluster, reached before any model work). `config.numerics`: what
    judges the budget, LiteRT's CPU kernels or, by default with `npu`, that NPU's emulated
    arithmetic. `config.val_patch` (default `default_val_patch`): the LR patch size quality is
    judged on; latency and placement are always at `config.input_size`."""
    if not isinstance(config, SearchConfig):
        raise UserInputError(f"config must be a SearchConfig, not {type(config).__name__}", option="config")
    numerics = npu_judge.resolve_numerics(config.numerics, config.npu)
    prof = None
    if not config.op_profiles:  # unknown name: fail before minutes of work
        prof = cost_model.load_profile(config.device_profile or DEFAULT_PROFILE)
    soc = None
    if config.npu:
        if not prof.npu_cpu_switch:
            raise UserInputError(f"--npu needs an NPU device profile with an npu_cpu_switch cost "
                                 f"('{prof.name}' has none); use --device_profile htp_npu")
        soc = npu_cost.check_npu_tools(config.npu)  # unknown SoC / extra not installed: one line, now
    own = plan is None
    plan = parallel.plan(config.workers, config.cluster) if own else plan  # a wrong address fails now
    try:
        s = _setup(src, config, plan, prof=prof, soc=soc, on_npu=numerics == "npu")
    except BaseException:
        if own:
            plan.close()
        raise
    return s if own else dataclasses.replace(s, owns_parallel=False)


def _setup(src: ModelSource, c: SearchConfig, plan: parallel.Plan, *, prof, soc, on_npu: bool) -> Setup:
    input_hw = c.input_size
    val_patch = c.val_patch or default_val_patch(input_hw)
    prep = hybrid.prepare_source(src, val_patch)
    deployed = None
    if tuple(val_patch) != tuple(input_hw):  # a frame-size model judged on patches: same layers, same weights
        deployed = hybrid.prepare_source(src, input_hw)
        if deployed.layers != prep.layers:
            raise UserInputError(f"the model at {input_hw[0]}x{input_hw[1]} has other layers than at "
                                 f"{val_patch[0]}x{val_patch[1]}; pass --val_patch equal to --input_size")
    cost_prep = deployed or prep
    if c.op_profiles:
        if len(c.op_profiles) != 2:
            raise UserInputError("--op_profiles takes two results files: all-a8w8 and all-a16w8 (comma separated)")
        shas = list(c.op_profile_models or (None, None))
        if len(shas) != 2:
            raise UserInputError("--op_profile_models takes the two .tflite files the profiles measured")
        cost = cost_model.from_op_profiles(cost_prep, c.op_profiles[0], c.op_profiles[1], a8w8_tflite_sha256=shas[0],
                                           a16w8_tflite_sha256=shas[1], model=src.name, scale=src.scale)
        label = f"op profiles {Path(c.op_profiles[0]).name}, {Path(c.op_profiles[1]).name}"
    else:
        label = c.device_profile or DEFAULT_PROFILE
        cost = cost_model.from_device_profile(cost_prep, label, model=src.name, scale=src.scale)
    calib = calibration.calibration_set(src.scale, val_patch, calib_dir=c.calib_dir, n_images=c.calib_images,
                                        convention=src.convention)
    val = quality_oracle.validation_set(src.scale, val_patch, val_dir=c.val_dir, n_images=c.val_images)
    qsv = qsv_narrow = ptq_report = None
    if c.ptq is not None:  # once for every candidate: CLE/AdaRound weights, wide and int8 grids
        from deploy.convert import quantizer
        prep, qsv, qsv_narrow, ptq_report = quantizer.ptq_for_search(prep, c.ptq, calib.patches,
                                                                     src.convention.peak)
    # oracle: candidates on simulated quantization (LiteRT judges the answer) or all on LiteRT;
    # numerics npu: the judge is the target NPU's emulated arithmetic (its PSNRs kept beside the compile cache)
    oracle = fast_oracle.make(c.oracle, prep, model=src.name, scale=src.scale, calib=calib, val=val,
                              convention=src.convention, budget_on=c.budget_on, reference=c.reference,
                              npu_soc=soc if on_npu else None, npu_cache_dir=c.npu_cache_dir if on_npu else None,
                              qsv=qsv, qsv_narrow=qsv_narrow, ptq=c.ptq)
    macs = {i.name: i.macs for i in hybrid.list_layers(prep)}
    npu = None
    if soc is not None:
        uniform = {p: _build_deployed(oracle, deployed, oracle.uniform(p)) for p in npu_cost.SEARCHED}
        npu = npu_cost.from_npu_placement(cost_prep, prof, soc, uniform, model=src.name, scale=src.scale,
                                          cache_dir=c.npu_cache_dir)
        cost, label = npu.cost, f"{label} + {soc.target} placement"
    return Setup(src, prep, tuple(make_groups(prep.graph, prep.layers, c.fuse)), oracle, cost, macs, label,
                 npu, parallel=plan, deployed=deployed, config=c, evaluator=parallel.evaluator(oracle, plan),
                 ptq_report=ptq_report)


#: quality is judged on LR patches of the deployed input size up to this many pixels; a larger
#: input (a video frame) is judged on VAL_PATCH patches of the same fully convolutional weights
#: (30 frame-size patches would cost ~100x the time for the same ranking). The same size and
#: threshold as deploy/convert/twin.py, so `convert.py --policy` at the frame calibrates as the search did.
MAX_PATCH_PIXELS = twin.TWIN_ABOVE_PX
VAL_PATCH = twin.TWIN_HW


def default_val_patch(input_hw) -> tuple[int, int]:
    h, w = int(input_hw[0]), int(input_hw[1])
    return (h, w) if h * w <= MAX_PATCH_PIXELS else VAL_PATCH


def drops_method(s: Setup) -> str:
    """"exact" or "estimated" for this session (see DROPS); the simulation is needed to estimate."""
    simulated = isinstance(s.oracle, fast_oracle.FastOracle)
    if s.drops == "estimated" and not simulated:  # the simulator could not run this graph
        raise UserInputError("--drops estimated needs the simulation, which cannot run this model "
                             "(the search fell back to LiteRT); use --drops exact")
    if s.drops != "auto" or not simulated:
        return "exact" if not simulated else s.drops
    work = len(s.groups) * len(s.oracle.val.lr) * sum(s.macs.values())
    return "estimated" if work > ESTIMATE_ABOVE_MACS else "exact"


def measure_drops(s: Setup, progress: bool, sens_file: Optional[str | Path] = None) -> sensitivity.Sensitivity:
    """Measure each group's a8w8 drop, or take it from an earlier --sensitivity run of the
    same model, groups and validation set (anything else is refused, not silently reused)."""
    if sens_file is None and drops_method(s) == "estimated":
        return sensitivity.estimated(s.oracle, s.groups, s.macs, progress=progress)
    if sens_file is None:
        return sensitivity.measure(s.oracle, s.groups, s.macs, both_directions=False, progress=progress,
                                   cache=measured_cache(s), evaluator=s.evaluator)
    obj = read_sensitivity_file(sens_file)
    want = {"kind": "sensitivity", "model": s.src.name, "scale": s.src.scale,
            "validation": s.oracle.val.to_json(), "groups": [g.name for g in s.groups]}
    want["weights"] = s.src.weights  # the same layers with other weights have other drops
    want["budget_on"] = s.oracle.budget_on  # worst-image drops are not mean drops
    want["ptq"] = s.config.ptq  # other grids, other drops
    got = {**{k: obj.get(k) for k in want}, "groups": [l.get("layer") for l in obj.get("layers", [])],
           "budget_on": obj.get("budget_on", "mean"), "ptq": (obj.get("config") or {}).get("ptq"),
           "weights": (obj.get("model_source") or {}).get("weights")}
    diff = [k for k in want if got[k] != want[k]]
    if diff:
        raise UserInputError(f"sensitivity file {sens_file} does not match this run ({', '.join(diff)} differ); "
                         "rerun --sensitivity with the same model, weights, --input_size and validation flags")
    return sensitivity.Sensitivity(s.src.name, s.src.scale, s.groups, tuple(l["macs"] for l in obj["layers"]),
                                   obj["baseline"], tuple(l["drop_db"] for l in obj["layers"]),
                                   tuple(l["gain_db"] for l in obj["layers"]), 0, 0.0, obj["validation"])


def read_sensitivity_file(sens_file: str | Path) -> dict:
    """A `--sensitivity` JSON (the one JSON reader), refused with one line when it is another kind
    of file (a policy, a front) or its per-layer rows are malformed; cheap, so the CLI checks it
    before any model work."""
    from deploy._files import read_json
    obj = read_json(sens_file, "sensitivity file", "write it with tools/search_policy.py --sensitivity")
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind != "sensitivity":
        what = ("a policy" if isinstance(obj, dict) and "layers" in obj and "default" in obj
                else f"kind {kind!r}" if kind else "not a sensitivity report")
        raise UserInputError(f"sensitivity file {sens_file} is {what}, not a --sensitivity result; write one with "
                             "tools/search_policy.py --sensitivity --out sens.json")
    rows = obj.get("layers")
    keys = ("layer", "macs", "drop_db", "gain_db")
    if (not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in keys) for r in rows)
            or "baseline" not in obj):
        raise UserInputError(f"sensitivity file {sens_file} is malformed (each of 'layers' needs "
                             f"{', '.join(keys)}); rerun --sensitivity")
    return obj


def cache_key(s: Setup) -> str:
    """What a measured PSNR depends on: the config's measurement fields (as JSON), the model and
    its weights (hashed), groups, I/O convention, calibration and validation sets, the oracle
    that actually measures (a graph the simulator cannot run falls back to LiteRT)."""
    import hashlib
    import numpy as np
    h = hashlib.sha256(json.dumps({
        "v": 2, "config": s.config.measurement_json(), "model": s.src.name, "scale": s.src.scale,
        "weights": s.src.weights, "groups": [[g.name, list(g.layers)] for g in s.groups],
        "input_hw": list(s.prep.input_shape[1:3]), "convention": s.src.to_json()["io_convention"],
        "calibration": s.oracle.calib.to_json(), "validation": s.oracle.val.to_json(), "oracle": s.oracle.kind},
        sort_keys=True, default=str).encode())
    for w in s.src.model.get_weights() if s.src.model is not None else []:
        h.update(np.ascontiguousarray(w).tobytes())
    h.update(hashlib.sha256(s.prep.float_tflite).digest() if s.src.graph_route else b"")
    return h.hexdigest()[:16]


def measured_cache(s: Setup) -> Optional[sensitivity.MeasuredCache]:
    return sensitivity.MeasuredCache(s.sens_cache, cache_key(s)) if s.sens_cache else None


def provenance(s: Setup) -> dict:
    return {"model_source": s.src.to_json(), "input_hw": list(s.deployed_hw),
            "group_names": [g.name for g in s.groups], "cost_model": s.cost.source,
            "oracle": s.oracle.kind, "numerics": fast_oracle.numerics_of(s.oracle), "budget_on": s.oracle.budget_on,
            "calibration_seconds": round(s.oracle.calibration_seconds, 1),
            "parallel": (s.parallel or parallel.Plan("none", 1)).to_json(), "config": s.config.to_json(),
            **({"ptq": s.ptq_report} if s.ptq_report is not None else {})}


