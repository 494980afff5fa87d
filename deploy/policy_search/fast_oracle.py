"""The fast quality oracle: candidates ranked on simulated quantization, LiteRT judges the answer.

`FastOracle` is a `QualityOracle` whose `psnr` runs `deploy.convert.fake_quant.Simulator`
(the float graph on TensorFlow's float kernels, all cores, every tensor rounded onto the grid
the real quantizer gives it; grids, int8 weights and biases read from the candidate's own
quantized model, exported from the same calibration but never invoked). It answers in a fraction of a second where LiteRT's int16
reference kernels take seconds to minutes, so the sensitivity pass and the search's candidates
use it. `judge` is a LiteRT `QualityOracle` sharing the calibration: `confirm` measures the
search's answer (and the reference) on real integer models, so the budget is checked where it
will run. `agreement` lists fast vs LiteRT PSNR for every model measured both ways.
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np

from deploy.convert import fake_quant
from deploy.convert import per_layer as hybrid
from deploy.convert import quantizer
from deploy.evaluation.runners import _to_uint8  # noqa: PLC2701 - the runner's own rounding
from deploy.policy_search.composed import ComposedArgs
from deploy.policy_search.npu_judge import EmulatedJudge, numerics_label
from deploy.policy_search.oracle import Assignment, QualityOracle, assignment_key
from deploy.policy_search.space import NARROW, WIDE

from deploy.policy_search.config import ORACLES  # noqa: E402,F401 - declared with the config
#: In a search, a candidate whose simulated PSNR is this close to the target (dB) is measured on
#: LiteRT, which decides it (fast vs LiteRT differ by <= 0.015 dB on the zoo's validation means).
BAND_DB = 0.03
#: The LiteRT-measured answer may miss the LiteRT target by at most this much (dB) before the
#: search is redone with every candidate measured on LiteRT: none, the budget holds on the
#: integer model that ships (simulation and LiteRT differ by ~0.005 dB on uniform models).
TOLERANCE_DB = 0.0
#: LiteRT decides the candidates near the target only where one LiteRT measurement of the
#: uniform a16w8 model takes at most this long (s): ESPCN, FSRCNN, XLSR, ABPN. Where it takes
#: longer (IMDN-RTC, EDSR: int16 reference kernels, tens of seconds per candidate, and a search's
#: refinement puts most candidates near the target), the search runs on the simulation alone
#: and LiteRT judges its answer; a miss tightens the budget by the miss and the search runs
#: again on the (cached) simulation, at most `ROUNDS` times, before every candidate goes to LiteRT.
LITERT_DECIDES_MAX_S = 10.0
ROUNDS = 4
#: extra tightening (dB) per round on top of the measured miss
ROUND_MARGIN_DB = 0.002
#: where the simulation searches alone, its first round aims this far (dB) inside the budget:
#: the largest fast-vs-LiteRT difference measured on searched hybrids (~0.005 dB, EDSR-baseline
#: x4), so LiteRT's check rarely sends the search round again (a round of EDSR-baseline x4 is
#: ~80 s of candidates plus ~35 s of LiteRT)
SIMULATION_MARGIN_DB = 0.005
#: where the simulation searches alone (candidates take seconds each), only candidates that would
#: save at least this fraction of predicted latency are measured (solver.search's min_gain):
#: smaller gains are far below the cost model's own error (README: median 8-63 % against measured
#: latencies). EDSR-baseline x4 measured 13 such candidates (0.04-0.14 %, ~55 s), none in budget.
REFINE_MIN_GAIN = 0.002


class FastOracle(QualityOracle):
    kind = "fast"

    def __init__(self, prep, *, model: str, scale: int, calib, val, convention, budget_on: str = "mean",
                 reference: str = "a16w8", on_eval=None, qsv=None, npu_soc=None, npu_cache_dir=None,
                 qsv_narrow=None, ptq=None):
        """`npu_soc`: judge on that NPU's emulated arithmetic (npu_judge.EmulatedJudge) instead
        of LiteRT's CPU kernels; emulated PSNRs are kept in `npu_cache_dir`."""
        super().__init__(prep, model=model, scale=scale, calib=calib, val=val, convention=convention,
                         budget_on=budget_on, reference=reference, on_eval=on_eval, qsv=qsv, qsv_narrow=qsv_narrow,
                         ptq=ptq)
        kw = dict(model=model, scale=scale, calib=calib, val=val, convention=convention, qsv=self.qsv,
                  budget_on=budget_on, reference=reference, qsv_narrow=qsv_narrow, ptq=ptq)
        self.judge = (QualityOracle(prep, **kw) if npu_soc is None else
                      EmulatedJudge(prep, soc=npu_soc, cache_dir=npu_cache_dir, **kw))
        #: per image, judge minus simulation for uniform a8w8 and a16w8: the last run's (a record)
        self.measured_offsets: Optional[dict[str, np.ndarray]] = None
        t = time.perf_counter()
        # the simulation follows the judge's arithmetic (fake_quant.ARITHMETICS)
        self.sim = fake_quant.Simulator(prep.float_tflite, arithmetic="litert" if npu_soc is None else "htp")
        self.setup_seconds = time.perf_counter() - t
        self.composed = ComposedArgs(self.sim, prep.ops, self._export)
        self._x = np.stack([convention.model_input(lr.astype(np.float32) / 255.0) for lr in val.lr])
        self.agreement: list[dict] = []
        self.decided_on_litert = 0  # candidates near the target measured on LiteRT (a count)
        self.litert_model_s: Optional[float] = None  # one LiteRT measurement of uniform a16w8
        #: drop_estimate.py's per-patch terms by (groups, probes, seed, batch): rescored, not rerun
        self.drop_estimates: dict[tuple, tuple] = {}

    def quantized(self, a: Assignment) -> bytes:
        """The candidate's real quantized model (quantizer export only: no invoke, no verify)."""
        return self._export(self.policy(a))

    def _export(self, pol) -> bytes:
        return quantizer.quantize(self.prep.float_tflite,
                                 quantizer.build_recipe(pol, self.prep.ops) + hybrid._io_rules(pol.io_type),  # noqa: SLF001
                                 self.qsv_for(pol))

    def _mixed(self) -> list:
        """Policies that put a precision boundary next to every layer, and next to every other
        one (composed.py's check): alternate layers, the complement, and alternate pairs."""
        flip = {NARROW: WIDE, WIDE: NARROW}
        alternate = {n: (NARROW, WIDE)[k % 2] for k, n in enumerate(self.layers)}
        pairs = {n: (NARROW, WIDE)[(k // 2) % 2] for k, n in enumerate(self.layers)}
        return [self.policy(alternate), self.policy({n: flip[p] for n, p in alternate.items()}), self.policy(pairs)]

    def simulated(self, a: Assignment):
        """What the simulator runs for `a`: its arguments assembled from uniform exports where
        that is exact for this graph (composed.py), else the candidate's own export."""
        pol = self.policy(a)
        return self.composed.op_args(pol, self._mixed) or self._export(pol)

    def _images_from_output(self, y: np.ndarray) -> np.ndarray:
        lr01 = [lr.astype(np.float32) / 255.0 for lr in self.val.lr]
        sr = [_to_uint8(self.convention.to_rgb01(y[k], lr01[k], self.scale)) for k in range(len(lr01))]
        return self.val.psnr_y_images(sr, self.scale)

    def _measure_assignment(self, a: Assignment) -> np.ndarray:
        return self._images_from_output(self.sim.run(self._x, self.simulated(a)))

    def _measure_float(self) -> np.ndarray:
        return self._images_from_output(self.sim.run(self._x, None))

    def remember(self, a: Assignment, y: np.ndarray) -> None:
        """Keep `y`, the simulator's output for `a` on the validation patches (run elsewhere,
        e.g. drop_estimate.py), as `a`'s measurement."""
        key = assignment_key(a, self.layers)
        if key not in self._cache:
            self._cache[key] = self._images_from_output(y)

    # -- a run's view: LiteRT decides whatever the simulation cannot ----------------------------
    def for_search(self, budget_db: float) -> "Searching":
        """This oracle as one search sees it (its `psnr` and reference; this object unchanged).

        Where LiteRT is cheap (`LITERT_DECIDES_MAX_S`) the reference is LiteRT's (so the target
        is LiteRT's), and a candidate whose fast value lies within `BAND_DB` of the target is
        measured on LiteRT, which then decides: every accept/reject the search makes is LiteRT's
        whenever the simulation is within the band of LiteRT (measured: <= 0.015 dB on means).
        Elsewhere (`band` False) the search runs on the simulation alone and
        `search_with_setup` confirms and tightens."""
        wide = self.uniform(WIDE)
        fresh = assignment_key(wide, self.layers) not in self.judge._cache  # noqa: SLF001
        t = time.perf_counter()
        self.judge.image_psnrs(wide)  # the a16w8 reference (and LiteRT's cost per candidate)
        if fresh:
            self.litert_model_s = time.perf_counter() - t
        band = self.litert_model_s is None or self.litert_model_s <= LITERT_DECIDES_MAX_S
        offsets = self._judge_offsets()
        ref = self.judge.psnr(wide) if self.reference == WIDE else self.judge.float_psnr()
        return Searching(self, target=ref - budget_db if band else None, offsets=offsets, band=band)

    def aligned(self) -> "Searching":
        """This oracle with every simulated value moved onto an NPU judge's numerics
        (`Searching.toward_judge`), no target: what the dual search asks."""
        return Searching(self, target=None, offsets=self._judge_offsets(), band=True)

    def _judge_offsets(self) -> Optional[dict[str, np.ndarray]]:
        """With an NPU judge: per image, judge minus simulation on uniform a8w8 and a16w8 (kept
        in `measured_offsets` for the report); None with LiteRT as the judge."""
        if not isinstance(self.judge, EmulatedJudge):
            return None
        offsets = {p: self.judge.image_psnrs(u) - self.image_psnrs(u)
                   for p, u in ((NARROW, self.uniform(NARROW)), (WIDE, self.uniform(WIDE)))}
        self.measured_offsets = offsets
        return offsets

    def compare(self, a: Assignment, label: str) -> dict:
        """Fast and LiteRT PSNR_Y of one assignment (mean and per image), recorded."""
        fast, real = self.image_psnrs(a), self.judge.image_psnrs(a)
        row = {"model": label, "fast_psnr_y": round(float(np.mean(fast)), 4),
               "litert_psnr_y": round(float(np.mean(real)), 4),
               "diff_db": round(float(np.mean(fast) - np.mean(real)), 4),
               "max_image_diff_db": round(float(np.max(np.abs(fast - real))), 4)}
        self.agreement.append(row)
        return row


class Searching:
    """One run's view of a `FastOracle`: the target (LiteRT's reference minus the budget, or None)
    and the NPU judge's offsets fixed when made; everything else (caches, the judge, the
    simulator) is the oracle's. Why a view: the same oracle serves sensitivity, searches with
    other budgets and fronts, and none of them may change what the others' `psnr` means."""

    def __init__(self, oracle: FastOracle, *, target: Optional[float],
                 offsets: Optional[dict[str, np.ndarray]], band: bool):
        self.oracle, self.target, self.offsets, self.band = oracle, target, offsets, band

    def __getattr__(self, name: str):
        return getattr(self.oracle, name)

    def _reference_images(self) -> np.ndarray:
        # on an NPU judge, candidates are scored on the judge's numerics: so is the reference
        o = self.oracle
        return o.judge._reference_images() if self.offsets is not None else o._reference_images()  # noqa: SLF001

    def score(self, images: np.ndarray) -> float:
        return QualityOracle.score(self, images)

    def toward_judge(self, a: Assignment, images: np.ndarray) -> np.ndarray:
        """The simulation's per-image PSNRs of `a` moved onto the judge's numerics.

        The simulation follows LiteRT's CPU arithmetic; an NPU judge rounds differently, and the
        difference grows with the int8 rounding a candidate carries. Measured on the two uniform
        models (exact there), it is interpolated by the share of all-a8w8's simulated loss the
        candidate has: `d16 + (d8 - d16) * w`, w = (sim16 - sim(a)) / (sim16 - sim8) in [0, 1].
        The candidates this decides near the target are measured on the judge anyway."""
        if self.offsets is None:
            return images
        o = self.oracle
        s16, s8 = (float(np.mean(o.image_psnrs(o.uniform(p)))) for p in (WIDE, NARROW))
        w = 0.0 if s16 - s8 <= 1e-9 else float(np.clip((s16 - float(np.mean(images))) / (s16 - s8), 0.0, 1.0))
        if dict(a) == o.uniform(NARROW):
            w = 1.0
        return images + self.offsets[WIDE] + (self.offsets[NARROW] - self.offsets[WIDE]) * w

    def psnr(self, a: Assignment, decide: bool = True) -> float:
        """`decide=False`: the search says this candidate cannot become its answer (it is not
        faster than the best so far), so the simulation's value is enough even near the target."""
        o = self.oracle
        if self.target is None or not decide:
            return o.psnr(a) if self.offsets is None else self.score(self.toward_judge(a, o.image_psnrs(a)))
        if dict(a) == o.uniform(WIDE) and o.reference == WIDE:
            return o.judge.psnr(a)
        fast = self.score(self.toward_judge(a, o.image_psnrs(a)))
        if abs(fast - self.target) <= BAND_DB:
            o.decided_on_litert += 1
            return o.judge.psnr(a)
        return fast

    def float_psnr(self) -> float:
        return self.oracle.judge.float_psnr() if self.target is not None else self.oracle.float_psnr()


def make(kind: str, prep, *, npu_soc=None, npu_cache_dir=None, **kw) -> QualityOracle:
    """`--oracle fast|litert`; a graph the simulator cannot run falls back to measuring every
    candidate on the judge (said so). `npu_soc`: the judge is that NPU's emulated arithmetic."""
    if kind == "fast":
        try:
            return FastOracle(prep, npu_soc=npu_soc, npu_cache_dir=npu_cache_dir, **kw)
        except fake_quant.SimulationUnsupported as e:
            import warnings
            where = "LiteRT" if npu_soc is None else "the emulated NPU"
            warnings.warn(f"{e}; measuring every candidate on {where} instead", stacklevel=2)
    return QualityOracle(prep, **kw) if npu_soc is None else EmulatedJudge(prep, soc=npu_soc,
                                                                           cache_dir=npu_cache_dir, **kw)


def numerics_of(oracle: QualityOracle) -> str:
    """What the oracle's answer and reference are measured with (every report says it)."""
    judge = getattr(oracle, "judge", oracle)
    return judge.numerics if isinstance(judge, EmulatedJudge) else numerics_label("cpu")


def confirm(oracle: QualityOracle, result, *, budget_db: float, reference: str, band: bool = True) -> Optional[dict]:
    """The search's answer judged on LiteRT: reference and answer measured on real integer
    models, fast vs LiteRT agreement recorded. None for a LiteRT oracle (already real).
    `band`: the run's `Searching.band` (LiteRT decided candidates near the target)."""
    if not isinstance(oracle, FastOracle):
        return None
    j = oracle.judge
    uniform = next((r for r in oracle.agreement if r["model"] == "uniform a16w8"), None)
    rows = [uniform or oracle.compare(oracle.uniform(WIDE), "uniform a16w8"),
            oracle.compare(result.assignment, "searched hybrid")]
    ref = j.psnr(j.uniform(WIDE)) if reference == "a16w8" else j.float_psnr()
    got = j.psnr(result.assignment)
    target = ref - budget_db
    judge = "the emulated NPU" if isinstance(j, EmulatedJudge) else "litert"
    return {"oracle": "fast", "numerics": numerics_of(oracle), "tolerance_db": TOLERANCE_DB, "band_db": BAND_DB,
            "mode": (f"{judge} decides candidates near the target" if band else
                     f"simulation searches, {judge} confirms the answer (tightened on a miss)"),
            **({"simulation_offsets_db": {p: round(float(np.mean(v)), 4) for p, v in oracle.measured_offsets.items()}}
               if oracle.measured_offsets else {}),
            "litert_model_s": None if oracle.litert_model_s is None else round(oracle.litert_model_s, 1),
            "decided_on_litert": oracle.decided_on_litert, "litert_reference_psnr_y": round(ref, 4),
            "litert_target_psnr_y": round(target, 4), "litert_psnr_y": round(got, 4),
            "litert_worst_image": j.worst_loss(result.assignment),
            "within_budget_on_litert": bool(got >= target - TOLERANCE_DB - 1e-9),
            "agreement": rows}
