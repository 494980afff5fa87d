"""Estimated sensitivity drops (deploy/policy_search/drop_estimate.py) against the exact ones on
the shipped FSRCNN x3 (real weights: its drops are tenths of a dB, some positive, as on the zoo),
`--drops auto`'s choice, and a search on estimated drops judged on LiteRT."""
import dataclasses

import numpy as np
import pytest

from deploy.errors import UserInputError
from deploy.policy_search import api
from deploy.policy_search import drop_estimate
from deploy.policy_search import sensitivity
from deploy.policy_search import session
from deploy.policy_search import fast_oracle
from deploy.convert import sources
from deploy.policy_search.config import SearchConfig


@pytest.fixture(scope="module")
def fast(hr_dir):
    s = session.setup(sources.resolve("fsrcnn", 3), SearchConfig(input_size=(16, 16), calib_dir=hr_dir,
                                                                 calib_images=2, val_dir=hr_dir, val_images=3))
    yield s
    s.close()


def test_estimated_drops_follow_the_exact_ones(fast):
    o = fast.oracle
    exact = np.asarray(sensitivity.measure(o, fast.groups, fast.macs, both_directions=False,
                                           progress=False).drop_db)
    est, record = drop_estimate.estimate(o, fast.groups, probes=8, progress=False)
    est = np.asarray(est)
    assert record["method"] == "estimated" and record["backward_passes"] == 9
    assert np.ptp(exact) > 0.03  # drops that differ, so agreeing means something
    assert np.corrcoef(exact, est)[0, 1] > 0.9, (exact, est)
    assert np.max(np.abs(est - exact)) < 0.5 * np.max(np.abs(exact)), (exact, est)
    # the baseline it linearises around is the simulated a16w8 model
    assert record["a16w8_psnr_y"] == pytest.approx(o.psnr(o.uniform("a16w8")), abs=1e-3)


def test_estimate_is_deterministic_and_kept(fast):
    a, first = drop_estimate.estimate(fast.oracle, fast.groups, probes=2, seed=3, progress=False)
    b, again = drop_estimate.estimate(fast.oracle, fast.groups, probes=2, seed=3, progress=False)
    assert again["reused"] and not first["reused"] and a == b  # the search after a timed pass
    fast.oracle.drop_estimates.clear()
    c, redone = drop_estimate.estimate(fast.oracle, fast.groups, probes=2, seed=3, progress=False)
    assert not redone["reused"] and c == a


def test_auto_estimates_only_where_exact_drops_are_expensive(fast, monkeypatch):
    s = dataclasses.replace(fast, config=fast.config.replace(drops="auto"))
    assert session.drops_method(s) == "exact"  # a tiny model: exact drops are cheap
    monkeypatch.setattr(session, "ESTIMATE_ABOVE_MACS", 0)
    assert session.drops_method(s) == "estimated"
    assert session.drops_method(dataclasses.replace(fast, config=fast.config.replace(drops="exact"))) == "exact"


@pytest.mark.parametrize("kw, msg", [({"drops": "guess"}, "drops must be one of"),
                                     ({"drops": "estimated", "oracle": "litert"}, "needs the simulation")])
def test_bad_drops_flags_are_refused_before_any_work(kw, msg):
    with pytest.raises(UserInputError, match=msg):
        session.setup(None, SearchConfig(input_size=(16, 16), **kw))


def test_search_on_estimated_drops_holds_the_budget_on_litert(fast):
    s = dataclasses.replace(fast, config=fast.config.replace(drops="estimated", budget_db=0.0))
    o = s.oracle
    wide, narrow = (o.judge.psnr(o.uniform(p)) for p in ("a16w8", "a8w8"))
    budget = 0.5 * (wide - narrow)
    out = api.search_with_setup(s.with_run(budget_db=budget), progress=False)
    assert out.report["drops"]["method"] == "estimated"
    assert out.feasible and out.report["litert_check"]["within_budget_on_litert"]
    assert o.judge.psnr(dict(out.report["policy"]["layers"])) >= wide - budget - fast_oracle.TOLERANCE_DB - 1e-9
