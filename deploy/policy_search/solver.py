"""Minimum-latency per-layer policy under a PSNR budget (NAWQ-SR's design-time search).

1. Measure what each group costs at a8w8 (sensitivity drop, one model per group).
2. Solve the MILP of deploy/policy_search/space.py over predicted latency and the additive loss model.
3. Confirm every solution with a real quantized model on the validation patches. Losses are
   not additive, so the effective loss budget is bisected: a solution that misses the target
   is cut off and the budget shrinks; one that meets it lets the budget grow.
4. Refine the best confirmed policy by single-group flips that lower predicted latency.
Where candidates take seconds, steps 3-4 measure only candidates that would save at least
`min_gain` of the best latency.
PSNR is measured on validation photos, never on the evaluation images.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
import itertools
import time
from typing import Any, Optional, Sequence

from tqdm import tqdm

from deploy.policy_search.oracle import QualityOracle
from deploy.policy_search.space import NARROW, WIDE, Group, Problem, solve

from deploy.policy_search.config import REFERENCES  # noqa: E402,F401 - declared (and checked) with the config


class SearchError(UserInputError):
    """The search cannot run as asked (message is one line for users)."""


def problem_from(cost_model, groups: Sequence[Group], drop_db: Sequence[float]) -> Problem:
    """The cost model's per-layer and per-edge costs, summed per group, as a Problem whose
    latency_ms equals cost_model.predict_ms for every a8w8/a16w8 assignment."""
    group_of = {l: i for i, g in enumerate(groups) for l in g.layers}
    cost = tuple((sum(cost_model.layer_ms[l][NARROW] for l in g.layers),
                  sum(cost_model.layer_ms[l][WIDE] for l in g.layers)) for g in groups)
    edges: dict[tuple[int, int], float] = {}
    for e in cost_model.edges:  # only between policy layers (I/O cost is in its fixed_ms)
        u, v = group_of[e.producer], group_of[e.consumer]
        if u != v:
            edges[(u, v)] = edges.get((u, v), 0.0) + cost_model.edge_ms(e)
    all_narrow = {l: NARROW for g in groups for l in g.layers}
    all_wide = {l: WIDE for g in groups for l in g.layers}
    prob = Problem(tuple(groups), cost, tuple((u, v, w) for (u, v), w in edges.items()), (),
                   tuple(max(0.0, -d) for d in drop_db))
    prob = dataclasses.replace(prob, base_ms=cost_model.predict_ms(all_narrow) - prob.latency_ms((0,) * prob.n))
    x1 = (1,) * prob.n
    if abs(prob.latency_ms(x1) - cost_model.predict_ms(all_wide)) > 1e-6 * max(1.0, prob.latency_ms(x1)):
        raise SearchError("internal: the search's latency model disagrees with the cost model "
                          f"({prob.latency_ms(x1):.4f} vs {cost_model.predict_ms(all_wide):.4f} ms)")
    return prob


@dataclasses.dataclass
class Candidate:
    x: tuple[int, ...]
    psnr: float
    ms: float
    step: str

    def to_json(self, prob: Problem) -> dict[str, Any]:
        return {"step": self.step, "psnr_y": round(self.psnr, 4), "predicted_ms": round(self.ms, 4),
                "a16w8_groups": [g.name for g, xi in zip(prob.groups, self.x) if xi]}


@dataclasses.dataclass
class SearchResult:
    problem: Problem
    best: Candidate
    feasible: bool
    reference: str
    reference_psnr: float
    target_psnr: float
    evaluations: int
    seconds: float
    history: list[Candidate]
    #: candidates (MILP solutions, refinement flips) not measured: they would save less than
    #: `min_gain` of the best policy's predicted latency
    min_gain: float = 0.0
    skipped_below_min_gain: int = 0

    @property
    def assignment(self) -> dict[str, str]:
        return self.problem.assignment(self.best.x)

    @property
    def a16w8_fraction(self) -> float:
        return sum(self.best.x) / max(1, self.problem.n)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "search", "reference": self.reference,
                "reference_psnr_y": round(self.reference_psnr, 4),
                "target_psnr_y": round(self.target_psnr, 4), "feasible": self.feasible,
                "psnr_y": round(self.best.psnr, 4), "predicted_ms": round(self.best.ms, 4),
                "a16w8_fraction": round(self.a16w8_fraction, 4), "groups": self.problem.n,
                "evaluations": self.evaluations, "seconds": round(self.seconds, 1),
                "min_gain": self.min_gain, "skipped_below_min_gain": self.skipped_below_min_gain,
                "history": [c.to_json(self.problem) for c in self.history]}


class _Tracker:
    """Evaluates candidates, keeps the history and the best one that meets the target."""

    def __init__(self, oracle: QualityOracle, prob: Problem, target: float, bar):
        self.oracle, self.prob, self.target, self.bar = oracle, prob, target, bar
        self.history: list[Candidate] = []
        self.seen: dict[tuple[int, ...], Candidate] = {}
        self.best: Optional[Candidate] = None
        self.skipped: set[tuple[int, ...]] = set()  # candidates below the minimum gain

    def ok(self, c: Candidate) -> bool:
        return c.psnr >= self.target - 1e-9

    def eval(self, x: tuple[int, ...], step: str) -> Candidate:
        if x in self.seen:
            return self.seen[x]
        ms = self.prob.latency_ms(x)
        a = self.prob.assignment(x)
        if getattr(self.oracle, "judge", None) is not None and self.best is not None and ms >= self.best.ms:
            psnr = self.oracle.psnr(a, decide=False)  # cannot become the answer: no LiteRT run for it
        else:
            psnr = self.oracle.psnr(a)
        c = Candidate(x, psnr, ms, step)
        self.seen[x] = c
        self.history.append(c)
        if self.ok(c) and (self.best is None or (c.ms, -c.psnr) < (self.best.ms, -self.best.psnr)):
            self.best = c
        self.bar.update(1)
        if self.best:
            self.bar.set_postfix(best_ms=f"{self.best.ms:.3f}", best_psnr=f"{self.best.psnr:.3f}",
                                 last=f"{c.psnr:.3f}")
        return c


def search(oracle: QualityOracle, prob: Problem, *, budget_db: float, reference: str = "a16w8",
           max_evals: int = 60, progress: bool = True, min_gain: float = 0.0) -> SearchResult:
    """Minimum predicted latency with PSNR_Y >= reference - budget_db on the validation set.

    `min_gain`: only candidates that would save at least this fraction of the best policy's
    predicted latency are measured, in the MILP phase and the refinement (0: all of them, the
    exhaustive-optimum guarantee on small models).
    Where each candidate costs seconds, a flip worth a fraction of a percent of latency is far
    below the cost model's own error and not worth a candidate (fast_oracle.REFINE_MIN_GAIN)."""
    if not 0.0 <= min_gain < 1.0:
        raise SearchError(f"min_gain must be a fraction of latency in [0, 1), not {min_gain}")
    t0, e0 = time.perf_counter(), oracle.evaluations
    bar = tqdm(total=max_evals, desc="search", unit="cand", disable=not progress)
    p_wide = oracle.psnr(oracle.uniform(WIDE))
    ref = p_wide if reference == "a16w8" else oracle.float_psnr()
    target = ref - budget_db
    tr = _Tracker(oracle, prob, target, bar)
    wide = tr.eval((1,) * prob.n, "uniform a16w8")
    if not tr.ok(wide):
        bar.close()
        return _result(tr, wide, False, reference, ref, target, oracle, e0, t0, min_gain)
    # uniform a8w8 is the fastest policy: when it meets the target nothing else is needed (its
    # PSNR is a baseline the report shows anyway)
    if tr.ok(tr.eval((0,) * prob.n, "uniform a8w8")):
        bar.close()
        return _result(tr, tr.best, True, reference, ref, target, oracle, e0, t0, min_gain)
    _milp_phase(tr, prob, allowed=p_wide - target, max_evals=max_evals, min_gain=min_gain)
    _refine(tr, prob, max_evals=max_evals, min_gain=min_gain)
    bar.close()
    return _result(tr, tr.best, True, reference, ref, target, oracle, e0, t0, min_gain)


def _result(tr, best, feasible, reference, ref, target, oracle, e0, t0, min_gain) -> SearchResult:
    return SearchResult(tr.prob, best, feasible, reference, ref, target,
                        oracle.evaluations - e0, time.perf_counter() - t0, tr.history,
                        min_gain, len(tr.skipped - set(tr.seen)))


def _milp_phase(tr: _Tracker, prob: Problem, *, allowed: float, max_evals: int, min_gain: float = 0.0) -> None:
    """Bisect the additive model's loss budget between a confirmed (lo) and a failed (hi) value
    (with `min_gain`: until the next solution would save less than that fraction of latency)."""
    lo, hi, budget, misses = 0.0, None, allowed, []
    for _ in range(12):
        if len(tr.history) >= max_evals:
            return
        x = solve(prob, budget, exclude=misses)
        if x is None:
            return
        if min_gain > 0 and tr.best is not None and x not in tr.seen \
                and tr.best.ms - prob.latency_ms(x) < min_gain * tr.best.ms:
            tr.skipped.add(x)
            return
        fresh = x not in tr.seen
        c = tr.eval(x, f"milp budget {budget:.4f} dB")
        if tr.ok(c):
            lo = budget
            top = sum(prob.drop_db)
            if budget >= top or (not fresh and hi is None):
                return  # the loss model allows everything a8w8-able already
            budget = min(top, budget * 2 + 1e-3) if hi is None else (lo + hi) / 2
        else:
            misses.append(x)
            hi = budget
            budget = (lo + hi) / 2
        if hi is not None and hi - lo < 0.05 * allowed + 1e-4:
            return


def _refine(tr: _Tracker, prob: Problem, *, max_evals: int, min_gain: float = 0.0) -> None:
    """First-improvement local search over single flips that lower predicted latency by at
    least `min_gain` of the current best's (the others are counted in `tr.skipped`)."""
    improved = True
    while improved and tr.best is not None:
        improved = False
        cur = tr.best
        flips = []
        for g in range(prob.n):
            y = tuple(1 - v if i == g else v for i, v in enumerate(cur.x))
            if prob.latency_ms(y) < cur.ms - 1e-12 and y not in tr.seen:
                if cur.ms - prob.latency_ms(y) < min_gain * cur.ms:
                    tr.skipped.add(y)
                    continue
                flips.append((prob.latency_ms(y), y))
        for _, y in sorted(flips):
            if len(tr.history) >= max_evals:
                return
            if tr.ok(tr.eval(y, "refine flip")):
                improved = True
                break


def exhaustive(oracle: QualityOracle, prob: Problem, *, progress: bool = True,
               limit: int = 4096) -> list[Candidate]:
    """Every assignment, measured for real: the ground truth the search is judged against."""
    if 2 ** prob.n > limit:
        raise SearchError(f"{prob.n} groups = {2 ** prob.n} policies; exhaustive search is capped at {limit}")
    out = []
    for x in tqdm(list(itertools.product((0, 1), repeat=prob.n)), desc="exhaustive", disable=not progress):
        out.append(Candidate(x, oracle.psnr(prob.assignment(x)), prob.latency_ms(x), "exhaustive"))
    return out


def optimum(cands: Sequence[Candidate], target: float) -> Optional[Candidate]:
    ok = [c for c in cands if c.psnr >= target - 1e-9]
    return min(ok, key=lambda c: (c.ms, -c.psnr)) if ok else None
