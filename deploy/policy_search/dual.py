"""The dual search: the best quality whose predicted latency fits a budget (`--latency_budget_ms`).

Why: a video pipeline has a frame budget (33 ms at 30 fps, less the rest of the pipeline); the
question is then "how good can it be in 8 ms", not "how fast within 0.1 dB".

1. All-a8w8 is the fastest policy: a budget below its predicted latency has no answer (one line
   saying its value). All-a16w8 within the budget is the answer outright (the widest policy).
2. The dual MILP (space.solve_dual): least predicted loss (the measured per-group drops,
   additive) within the budget; its solution and the next-best ones (no-good cuts) measured.
3. From the best measured, single flips a8w8 -> a16w8 that still fit and swaps (one group up,
   one down) measured first-improvement, until `max_evals`.
4. Candidates are measured on the oracle (the fast simulation, moved onto the judge's numerics
   where the judge is an NPU); the best few are measured on the judge (LiteRT or the emulated
   NPU), which picks the answer: the PSNR reported is the judge's.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Optional

from tqdm import tqdm

from deploy.policy_search.oracle import QualityOracle
from deploy.policy_search.solver import Candidate, SearchError
from deploy.policy_search.space import WIDE, Problem, solve_dual

#: MILP solutions (with no-good cuts) measured before the local search
MILP_SOLUTIONS = 4
#: best simulated candidates measured on the judge, which picks among them
JUDGED = 3


class LatencyBudgetImpossible(SearchError):
    """Even all-a8w8 is predicted slower than the latency budget."""


@dataclasses.dataclass
class DualResult:
    problem: Problem
    best: Candidate
    latency_budget_ms: float
    reference: str
    reference_psnr: float
    evaluations: int
    seconds: float
    history: list[Candidate]
    judged: list[dict[str, Any]]

    @property
    def assignment(self) -> dict[str, str]:
        return self.problem.assignment(self.best.x)

    @property
    def a16w8_fraction(self) -> float:
        return sum(self.best.x) / max(1, self.problem.n)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "dual", "latency_budget_ms": self.latency_budget_ms, "reference": self.reference,
                "reference_psnr_y": round(self.reference_psnr, 4), "psnr_y": round(self.best.psnr, 4),
                "loss_db": round(self.reference_psnr - self.best.psnr, 4),
                "predicted_ms": round(self.best.ms, 4), "a16w8_fraction": round(self.a16w8_fraction, 4),
                "groups": self.problem.n, "evaluations": self.evaluations, "seconds": round(self.seconds, 1),
                "judged": self.judged, "history": [c.to_json(self.problem) for c in self.history]}


def best_within(oracle: QualityOracle, prob: Problem, *, latency_budget_ms: float, reference: str = "a16w8",
                max_evals: int = 60, progress: bool = True) -> DualResult:
    """Highest PSNR_Y (mean over validation images) with predicted latency <= the budget."""
    t0, e0 = time.perf_counter(), oracle.evaluations
    check_budget(prob, latency_budget_ms)
    wide_ms = prob.latency_ms((1,) * prob.n)
    judge = getattr(oracle, "judge", oracle)
    ref = judge.psnr(judge.uniform(WIDE)) if reference == WIDE else judge.float_psnr()
    seen: dict[tuple[int, ...], Candidate] = {}
    history: list[Candidate] = []
    bar = tqdm(total=max_evals, desc="dual search", unit="cand", disable=not progress)

    def measure(x: tuple[int, ...], step: str) -> Candidate:
        if x not in seen:
            seen[x] = Candidate(x, float(oracle.psnr(prob.assignment(x))), prob.latency_ms(x), step)
            history.append(seen[x])
            bar.update(1)
        return seen[x]

    def fits(x: tuple[int, ...]) -> bool:
        return prob.latency_ms(x) <= latency_budget_ms + 1e-9

    def better(c: Candidate, d: Optional[Candidate]) -> bool:
        return d is None or (c.psnr, -c.ms) > (d.psnr, -d.ms)

    best: Optional[Candidate] = None
    if wide_ms <= latency_budget_ms + 1e-9:
        best = measure((1,) * prob.n, "uniform a16w8 fits the budget")
    else:
        best = measure((0,) * prob.n, "uniform a8w8")
        cuts: list[tuple[int, ...]] = []
        for _ in range(MILP_SOLUTIONS):
            x = solve_dual(prob, latency_budget_ms, exclude=cuts)
            if x is None or len(history) >= max_evals:
                break
            cuts.append(x)
            c = measure(x, "dual milp")
            best = c if better(c, best) else best
        improved = True
        while improved and len(history) < max_evals:
            improved = False
            moves = [_flip(best.x, g) for g in range(prob.n) if not best.x[g]]
            moves += [_flip(_flip(best.x, u), d) for u in range(prob.n) if not best.x[u]
                      for d in range(prob.n) if best.x[d]]
            moves = sorted({y for y in moves if fits(y) and y not in seen},
                           key=lambda y: -sum(prob.drop_db[g] for g in range(prob.n) if y[g]))
            for y in moves:
                if len(history) >= max_evals:
                    break
                c = measure(y, "dual refine")
                if better(c, best):
                    best, improved = c, True
                    break
    bar.close()
    judged = _judge_best(oracle, prob, [c for c in history if fits(c.x)])
    pick = max(judged, key=lambda r: (r["judge_psnr_y"], -r["predicted_ms"]))
    answer = seen[tuple(pick["x"])]
    answer = dataclasses.replace(answer, psnr=pick["judge_psnr_y"])
    for r in judged:
        r.pop("x")
    return DualResult(prob, answer, latency_budget_ms, reference, ref, oracle.evaluations - e0,
                      time.perf_counter() - t0, history, judged)


def check_budget(prob: Problem, latency_budget_ms: float) -> None:
    """One line when even all-a8w8, the fastest policy, is predicted over the budget."""
    narrow_ms = prob.latency_ms((0,) * prob.n)
    if latency_budget_ms < narrow_ms - 1e-9:
        raise LatencyBudgetImpossible(
            f"--latency_budget_ms {latency_budget_ms:g} is below the fastest policy, all-a8w8 at "
            f"{narrow_ms:.4f} ms predicted: raise the budget, or pick a smaller model or input size")


def _flip(x: tuple[int, ...], g: int) -> tuple[int, ...]:
    return tuple(1 - v if i == g else v for i, v in enumerate(x))


def _judge_best(oracle: QualityOracle, prob: Problem, fitting: list[Candidate]) -> list[dict[str, Any]]:
    """The best `JUDGED` candidates by the oracle, measured on its judge (itself for a LiteRT oracle)."""
    judge = getattr(oracle, "judge", oracle)
    top = sorted(fitting, key=lambda c: (-c.psnr, c.ms))[:JUDGED]
    return [{"x": list(c.x), "oracle_psnr_y": round(c.psnr, 4), "predicted_ms": round(c.ms, 4),
             "judge_psnr_y": float(judge.psnr(prob.assignment(c.x))),
             "a16w8_groups": [g.name for g, xi in zip(prob.groups, c.x) if xi]} for c in top]


__all__ = ["DualResult", "LatencyBudgetImpossible", "best_within", "check_budget"]
