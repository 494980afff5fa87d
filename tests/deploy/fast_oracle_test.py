"""The fast (simulated-quantization) oracle against LiteRT on a tiny real model: same drops,
same optimum as exhaustive enumeration on LiteRT, worst-image budgets, stratified patches."""
import numpy as np
import pytest

from deploy.commands import search_jobs
from deploy.policy_search import session
from deploy.convert import fake_quant
from deploy.convert import per_layer as hybrid
from deploy.convert.sources import ModelSource
from deploy.data import calibration
from deploy.data.io_convention import IOConvention
from deploy.evaluation.runners import TFLiteRunner
from deploy.latency import cost_model
from deploy.policy_search import api
from deploy.policy_search import fast_oracle
from deploy.policy_search.config import SearchConfig
from deploy.policy_search import oracle as quality_oracle
from deploy.policy_search import sensitivity
from deploy.policy_search import solver
from deploy.policy_search.space import make_groups
from tests.deploy.search_test import HW, _tiny

#: fast vs LiteRT PSNR_Y on the tiny model's validation patches (dB; measured ~0.005)
AGREE_DB = 0.03


def _setup(hr_dir, budget_on="mean"):
    src = ModelSource("tiny", 2, _tiny(), IOConvention(), False, None)
    prep = hybrid.prepare(src.model)
    calib = calibration.calibration_set(2, HW, calib_dir=hr_dir, n_images=3, patches_per_image=2)
    val = quality_oracle.validation_set(2, HW, val_dir=hr_dir, n_images=3, patches_per_image=2)
    oracle = fast_oracle.FastOracle(prep, model="tiny", scale=2, calib=calib, val=val,
                                    convention=src.convention, budget_on=budget_on)
    cost = cost_model.from_device_profile(prep, "htp_npu", model="tiny", scale=2)
    macs = {i.name: i.macs for i in hybrid.list_layers(prep)}
    return session.Setup(src, prep, tuple(make_groups(prep.model, prep.layers)), oracle, cost, macs, "htp_npu",
                             config=SearchConfig(budget_on=budget_on))


@pytest.fixture(scope="module")
def fast(hr_dir):
    return _setup(hr_dir)


def test_float_simulation_is_the_float_model(fast):
    o = fast.oracle
    ref = np.stack(TFLiteRunner(fast.prep.float_tflite, 2, workers=1).map(o.val.lr))
    got = o.sim.run(o._x, None)
    sr = np.stack([np.clip(np.round(y * 255), 0, 255).astype(np.uint8) for y in got])
    assert np.abs(sr.astype(int) - ref.astype(int)).max() <= 1
    assert o.float_psnr() == pytest.approx(o.judge.float_psnr(), abs=1e-3)


def test_resumed_runs_are_bit_identical_to_full_runs(fast):
    """A candidate that shares a prefix with a kept run starts at a checkpoint: fewer ops run,
    the same output to the bit as a fresh simulator running the whole graph."""
    o = fast.oracle
    sim = fake_quant.Simulator(fast.prep.float_tflite)
    assert len(sim.checkpoints) > 1
    wide = o.uniform("a16w8")
    sim.run(o._x, o.quantized(wide))
    before = sim.ops_run
    for g in fast.groups[1:]:
        q = o.quantized({**wide, **{l: "a8w8" for l in g.layers}})
        resumed = sim.run(o._x, q)
        fresh = fake_quant.Simulator(fast.prep.float_tflite).run(o._x, q)
        assert np.array_equal(resumed, fresh), g.name
    assert sim.ops_run - before < (len(fast.groups) - 1) * len(sim.ops)


def test_uniform_models_agree_with_litert(fast):
    o = fast.oracle
    for p in ("a8w8", "a16w8"):
        row = o.compare(o.uniform(p), p)
        assert abs(row["diff_db"]) < AGREE_DB, row


def test_drops_match_litert(fast):
    o = fast.oracle
    quick = sensitivity.measure(o, fast.groups, fast.macs, both_directions=False, progress=False)
    real = sensitivity.measure(o.judge, fast.groups, fast.macs, both_directions=False, progress=False)
    assert quick.drop_db == pytest.approx(real.drop_db, abs=AGREE_DB)
    # the order that steers the MILP is LiteRT's where drops differ by more than the agreement
    for i in range(len(real.drop_db)):
        for j in range(len(real.drop_db)):
            if real.drop_db[i] < real.drop_db[j] - 2 * AGREE_DB:
                assert quick.drop_db[i] < quick.drop_db[j]


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_fast_search_reaches_the_litert_optimum(fast, fraction):
    """Candidates on the simulation, answer judged on LiteRT: the enumerated LiteRT optimum."""
    o = fast.oracle
    prob = fast.problem(session.measure_drops(fast, progress=False).drop_db)
    truth = solver.exhaustive(o.judge, prob, progress=False)
    wide, narrow = (o.judge.psnr(o.uniform(p)) for p in ("a16w8", "a8w8"))
    budget = fraction * (wide - narrow)
    out = api.search_with_setup(fast.with_run(budget_db=budget), progress=False)
    opt = solver.optimum(truth, wide - budget)
    assert out.feasible and out.report["oracle"] == "fast"
    chosen = dict(out.report["policy"]["layers"])
    assert o.judge.psnr(chosen) >= wide - budget - fast_oracle.TOLERANCE_DB - 1e-9  # held on LiteRT
    assert out.predicted_ms == pytest.approx(opt.ms)
    assert out.report["min_gain"] == 0.0  # LiteRT is cheap here: every candidate is measured


def test_worst_image_budget_holds_on_litert(hr_dir):
    s = _setup(hr_dir, budget_on="worst")
    out = api.search_with_setup(s.with_run(budget_db=0.05), progress=False)
    w = out.report["worst_image"]
    assert out.report["budget_on"] == "worst" and w["image"] in s.oracle.val.images
    assert w["loss_db"] <= 0.05 + fast_oracle.TOLERANCE_DB
    assert "worst validation image" in search_jobs.search_table(dict(out.report))


def test_validation_patches_span_smooth_to_detailed(hr_dir):
    val = quality_oracle.validation_set(2, HW, val_dir=hr_dir, n_images=3, patches_per_image=4)
    assert val.to_json()["selection"] == quality_oracle.SELECTION

    def energy(p):
        g = p.astype(np.float32).mean(-1)
        return np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()

    for i in range(3):
        e = [energy(p) for p, j in zip(val.lr, val.image_of) if j == i]
        assert len(e) == 4 and all(a < b for a, b in zip(e, e[1:]))  # one window per stratum, smooth to detailed



def test_fast_pareto_front_is_confirmed_on_litert(fast, tmp_path):
    """A front found on the simulation carries every front point's and both uniform policies'
    LiteRT PSNR, and they agree with the simulation."""
    front = search_jobs.run_pareto(fast.with_run(pareto_points=3), tmp_path / "front.json", progress=False)
    on = [p for p in front["points"] if p["on_front"]]
    assert on and all("litert_psnr_y" in p for p in on)
    assert all("litert_psnr_y" in front["uniform"][k] for k in ("a8w8", "a16w8"))
    assert front["oracle"] == "fast" and front["litert_check"]["max_abs_diff_db"] < AGREE_DB
    for p in on:
        assert abs(p["psnr_y"] - p["litert_psnr_y"]) < AGREE_DB


def test_where_litert_is_slow_the_simulation_searches_and_litert_confirms(hr_dir, monkeypatch):
    """Models whose LiteRT run is slow (IMDN-RTC, EDSR) search on the simulation alone: no
    candidate is decided on LiteRT, only the reference and the answer(s) are measured there, and
    the answer holds the budget on LiteRT."""
    monkeypatch.setattr(fast_oracle, "LITERT_DECIDES_MAX_S", 0.0)
    s = _setup(hr_dir)
    out = api.search_with_setup(s.with_run(budget_db=0.05))
    chk = out.report["litert_check"]
    assert chk["mode"].startswith("simulation") and s.oracle.decided_on_litert == 0
    assert chk["within_budget_on_litert"] and "fallback" not in chk
    assert s.oracle.judge.evaluations <= 1 + chk["rounds"]
    # candidates cost seconds there: only those worth REFINE_MIN_GAIN of latency are measured
    assert out.report["min_gain"] == fast_oracle.REFINE_MIN_GAIN
