"""Sensitivity, search and Pareto on a tiny real model, judged against exhaustive enumeration."""
import dataclasses
import json
import math

import numpy as np
import pytest

import models
from deploy.data import calibration
from deploy.policy_search import oracle as quality_oracle
from deploy.convert import per_layer as hybrid
from deploy.latency import cost_model
from deploy.policy_search import solver
from deploy.commands import search_jobs
from deploy.policy_search import session
from deploy.policy_search import sensitivity
from deploy.commands.policy_jobs import convert_with_policy
from deploy.data.io_convention import IOConvention
from deploy.errors import UserInputError
from deploy.policy_search.config import SearchConfig
from deploy.policy_search.space import make_groups
from deploy.convert.sources import ModelSource
from models._keras import keras

HW = (16, 16)


def _tiny() -> keras.Model:
    """Nearest-neighbour upscaling plus a small learned-looking residual: a real image comes
    out (~25 dB), so quantization error shows in PSNR as it does in trained SR nets."""
    keras.utils.set_random_seed(3)
    small = keras.initializers.RandomNormal(stddev=0.05)
    x_in = keras.Input((*HW, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="head")(x_in)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body")(x)
    x = keras.layers.Add(name="skip")([x, y])
    x = keras.layers.Conv2D(12, 3, padding="same", kernel_initializer=small, name="tail")(x)
    nearest = keras.layers.Concatenate(name="repeat")([x_in] * 4)
    x = keras.layers.Add(name="residual")([x, nearest])
    x = models.layers.PixelShuffle(2, name="shuffle")(x)
    return keras.Model(x_in, x)


@pytest.fixture(scope="module")
def setup(hr_dir):
    src = ModelSource("tiny", 2, _tiny(), IOConvention(), False, None)
    prep = hybrid.prepare(src.model)
    calib = calibration.calibration_set(2, HW, calib_dir=hr_dir, n_images=3, patches_per_image=2)
    val = quality_oracle.validation_set(2, HW, val_dir=hr_dir, n_images=3, patches_per_image=2)
    oracle = quality_oracle.QualityOracle(prep, model="tiny", scale=2, calib=calib, val=val)
    cost = cost_model.from_device_profile(prep, "htp_npu", model="tiny", scale=2)
    groups = tuple(make_groups(prep.model, prep.layers))
    macs = {i.name: i.macs for i in hybrid.list_layers(prep)}
    return session.Setup(src, prep, groups, oracle, cost, macs, "htp_npu")


def test_validation_patches_are_real_and_held_out(setup):
    val = setup.oracle.val
    assert len(val.lr) == 6 and val.lr[0].shape == (16, 16, 3) and val.hr[0].shape == (32, 32, 3)
    assert set(val.images).isdisjoint({"astronaut", "coffee", "chelsea", "rocket", "camera", "grace_hopper"})


def test_sensitivity_measures_every_group_both_ways(setup, tmp_path):
    sens = sensitivity.measure(setup.oracle, setup.groups, setup.macs, progress=False)
    assert [g.layers for g in sens.groups] == [("head",), ("body",), ("skip",), ("tail",), ("repeat",),
                                              ("residual", "shuffle")]
    wide = setup.oracle.psnr(setup.oracle.uniform("a16w8"))
    narrow = setup.oracle.psnr(setup.oracle.uniform("a8w8"))
    assert sens.baseline == {"a16w8": wide, "a8w8": narrow}
    for g, d, gain in zip(sens.groups, sens.drop_db, sens.gain_db):
        moved = {**setup.oracle.uniform("a16w8"), **{l: "a8w8" for l in g.layers}}
        assert d == pytest.approx(setup.oracle.psnr(moved) - wide)
        assert math.isfinite(gain)
    assert any(d < 0 for d in sens.drop_db)  # int8 somewhere costs quality on a real model
    sensitivity.plot(sens, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 5000
    assert json.loads(json.dumps(sens.to_json()))["layers"][0]["layer"] == "head"


def test_problem_latency_equals_cost_model(setup):
    sens = session.measure_drops(setup, progress=False)
    prob = setup.problem(sens.drop_db)
    rng = np.random.default_rng(0)
    for _ in range(8):
        x = tuple(int(v) for v in rng.integers(0, 2, prob.n))
        assert prob.latency_ms(x) == pytest.approx(setup.cost.predict_ms(prob.assignment(x)))


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_search_finds_the_enumerated_optimum(setup, fraction):
    """Budgets spread between 'as good as all-a16w8' and 'all-a8w8 is fine'."""
    prob = setup.problem(session.measure_drops(setup, progress=False).drop_db)
    truth = solver.exhaustive(setup.oracle, prob, progress=False)
    wide, narrow = (setup.oracle.psnr(setup.oracle.uniform(p)) for p in ("a16w8", "a8w8"))
    result = solver.search(setup.oracle, prob, budget_db=fraction * (wide - narrow), progress=False)
    opt = solver.optimum(truth, result.target_psnr)
    assert result.feasible and result.best.psnr >= result.target_psnr - 1e-9
    assert result.best.ms == pytest.approx(opt.ms)
    assert result.evaluations <= len(truth)


def test_searched_policy_converts_and_verifies(setup, tmp_path):
    out = tmp_path / "hybrid.json"
    report = search_jobs.run_search(setup.with_run(budget_db=0.02), out, progress=False)
    assert (tmp_path / "hybrid.search.json").is_file() and report["feasible"]
    conv = convert_with_policy(setup.src, str(out), tmp_path / "m.tflite", input_hw=HW,
                               calib_dir=str(setup.oracle.calib.source), calib_images=3)
    assert conv["verified"]
    wide = {l["layer"] for l in conv["layers"] if l["actual"] == "a16w8"}
    assert wide == {l for l, p in report["policy"]["layers"].items() if p == "a16w8"}


def test_impossible_budget_writes_best_found_and_says_so(setup, tmp_path):
    out = tmp_path / "p.json"
    with pytest.raises(search_jobs.BudgetImpossible, match="budget impossible"):
        # float reference, zero budget: the quantized models all fall short of float
        o = setup.oracle
        on_float = quality_oracle.QualityOracle(o.prep, model=o.model, scale=o.scale, calib=o.calib, val=o.val,
                                                qsv=o.qsv, reference="float")
        floated = dataclasses.replace(setup, oracle=on_float, config=SearchConfig(budget_db=0.0, reference="float"))
        search_jobs.run_search(floated, out, progress=False)
    policy = json.loads(out.read_text())
    assert set(policy["layers"].values()) == {"a16w8"}


def test_pareto_front_is_non_dominated_and_plotted(setup, tmp_path):
    front = search_jobs.run_pareto(setup.with_run(pareto_points=5), tmp_path / "front.json", progress=False)
    pts = front["points"]
    on = [p for p in pts if p["on_front"]]
    for p in on:
        assert not any(q["predicted_ms"] <= p["predicted_ms"] and q["psnr_y"] >= p["psnr_y"]
                       and (q["predicted_ms"] < p["predicted_ms"] or q["psnr_y"] > p["psnr_y"]) for q in pts)
    assert {"a8w8", "a16w8", "float"} <= set(front["uniform"])
    assert (tmp_path / "front.png").stat().st_size > 5000


@pytest.mark.parametrize("text", ["-0.1", "abc", "nan", "inf"])
def test_bad_budgets_are_refused(text):
    """One check, the config's; the CLI's wording comes from the error's field."""
    from deploy.commands.cli import wording
    with pytest.raises(UserInputError) as e:
        search_jobs.SearchConfig(budget_db=search_jobs.parse_budget(text))
    assert e.value.option == "budget_db" and wording(e.value).startswith("--budget_db must be")


def test_unknown_profile_lists_known_ones():
    with pytest.raises(cost_model.LatencyError, match="known: .*htp_npu"):
        cost_model.load_profile("no_such_npu")


def test_existing_outputs_are_not_overwritten(setup, tmp_path):
    out = tmp_path / "s.json"
    out.write_text("keep")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        search_jobs.run_sensitivity(setup, out, progress=False)
    assert out.read_text() == "keep"


def test_sensitivity_file_is_reused_only_for_the_same_run(setup, tmp_path):
    sens_path = tmp_path / "sens.json"
    search_jobs.run_sensitivity(setup, sens_path, progress=False)
    reused = session.measure_drops(setup, False, sens_path)
    fresh = session.measure_drops(setup, False)
    assert reused.drop_db == pytest.approx(fresh.drop_db, abs=1e-4) and reused.evaluations == 0
    other = json.loads(sens_path.read_text())
    other["model"] = "espcn"
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="does not match this run \\(model differ"):
        session.measure_drops(setup, False, tmp_path / "other.json")
    with pytest.raises(ValueError, match="does not exist"):
        session.measure_drops(setup, False, tmp_path / "missing.json")
    retrained = json.loads(sens_path.read_text())
    retrained["model_source"]["weights"] = "other_weights.h5"  # same layers, other weights
    (tmp_path / "retrained.json").write_text(json.dumps(retrained))
    with pytest.raises(ValueError, match="does not match this run \\(weights differ"):
        session.measure_drops(setup, False, tmp_path / "retrained.json")


def test_refinement_skips_flips_below_the_minimum_gain(setup):
    """Flips worth less than `min_gain` of latency are counted, not measured; 0 tries them all."""
    prob = setup.problem(session.measure_drops(setup, progress=False).drop_db)
    wide, narrow = (setup.oracle.psnr(setup.oracle.uniform(p)) for p in ("a16w8", "a8w8"))
    budget = 0.5 * (wide - narrow)
    full = solver.search(setup.oracle, prob, budget_db=budget, progress=False)
    lean = solver.search(setup.oracle, prob, budget_db=budget, progress=False, min_gain=0.99)
    assert full.skipped_below_min_gain == 0 and full.to_json()["min_gain"] == 0.0
    refined = [c for c in full.history if c.step == "refine flip"]
    assert lean.skipped_below_min_gain >= 1 and not [c for c in lean.history if c.step == "refine flip"]
    assert refined and lean.best.ms >= full.best.ms  # what the skipped flips could have gained
    with pytest.raises(solver.SearchError, match="min_gain"):
        solver.search(setup.oracle, prob, budget_db=budget, progress=False, min_gain=1.5)
