"""The dual search (`--latency_budget_ms`): best PSNR within a predicted latency. The dual MILP is
exact for its model (brute force), the search on a tiny real model keeps to the budget and picks
the best judged candidate, and a budget below all-a8w8 is one line naming its value."""
import itertools

import numpy as np
import pytest

from deploy.errors import SrdeployError
from deploy.policy_search import dual
from deploy.policy_search.space import solve_dual
from tests.deploy.search_space_test import _random_problem
from tests.deploy.search_test import setup  # noqa: F401 - the module-scoped tiny-model session


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("slack", [0.0, 0.3, 0.7, 1.0])
def test_dual_milp_matches_brute_force(seed, slack):
    prob = _random_problem(seed)
    lo, hi = prob.latency_ms((0,) * prob.n), prob.latency_ms((1,) * prob.n)
    budget = lo + slack * (hi - lo)
    fits = [x for x in itertools.product((0, 1), repeat=prob.n) if prob.latency_ms(x) <= budget + 1e-9]
    best = min(prob.predicted_loss(x) for x in fits)
    x = solve_dual(prob, budget)
    assert prob.latency_ms(x) <= budget + 1e-9
    assert prob.predicted_loss(x) == pytest.approx(best, abs=1e-9)
    assert solve_dual(prob, lo - 1e-3) is None


def test_dual_search_keeps_to_the_budget_and_picks_the_best_judged(setup):  # noqa: F811
    s = setup
    prob = s.problem([0.05] * len(s.groups))
    lo, hi = prob.latency_ms((0,) * prob.n), prob.latency_ms((1,) * prob.n)
    budget = lo + 0.5 * (hi - lo)
    r = dual.best_within(s.oracle, prob, latency_budget_ms=budget, max_evals=12, progress=False)
    assert r.best.ms <= budget + 1e-9 and 0 < len(r.judged) <= dual.JUDGED
    measured = [c for c in r.history if c.ms <= budget + 1e-9]
    assert r.best.psnr == pytest.approx(max(j["judge_psnr_y"] for j in r.judged))
    assert r.best.psnr >= max(c.psnr for c in measured) - 1e-9  # the judge is the oracle here (LiteRT)
    assert r.to_json()["loss_db"] == pytest.approx(r.reference_psnr - r.best.psnr, abs=1e-4)
    roomy = dual.best_within(s.oracle, prob, latency_budget_ms=hi, progress=False)
    assert roomy.best.x == (1,) * prob.n  # all-a16w8 fits: the widest policy


def test_budget_below_all_int8_says_its_value(setup):  # noqa: F811
    prob = setup.problem([0.05] * len(setup.groups))
    lo = prob.latency_ms((0,) * prob.n)
    with pytest.raises(SrdeployError, match=f"all-a8w8 at {lo:.4f} ms"):
        dual.best_within(setup.oracle, prob, latency_budget_ms=lo / 2, progress=False)
    assert np.isfinite(lo)
