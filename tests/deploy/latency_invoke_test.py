"""A start-up (per-invoke) cost per precision (deploy/latency/op_pricing.invoke_ms / invoke_per_op): a uniform
graph pays its precision's, a mixed-precision graph the mean weighted by its ops' precisions (linear in each
layer's precision, so the search's MILP prices it exactly), by hand and by both product pricing paths; the
fit (bench/published/latency_fit.py, roofline_fit.py) recovers known per-precision start-up costs."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from deploy.latency import cost_model, device_profiles
from deploy.latency.op_pricing import invoke_ms

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.published import latency_fit as lf  # noqa: E402
from bench.published import roofline_fit as rf  # noqa: E402

START = {"a8w8": 80.0, "a16w8": 110.0, "float": 200.0}   # us
LAYERS = ("c1", "c2", "add")                              # conv_add_prep: one op each


@pytest.fixture(scope="module")
def prep(conv_add_prep):
    return conv_add_prep


def _obj(invoke: dict) -> dict:
    obj = json.loads((device_profiles.PROFILE_DIR / "htp_npu.json").read_text())
    return {**obj, "invoke_overhead_us": {**invoke, "source": "test"}}


def _pair(prep):
    """The cost models of one profile with no start-up cost and with START per precision."""
    zero = device_profiles.from_json(_obj({"a8w8": 0}), "t0")
    per = device_profiles.from_json(_obj(START), "t1")
    return (cost_model.from_device_profile(prep, zero, model="m", scale=1),
            cost_model.from_device_profile(prep, per, model="m", scale=1))


def test_uniform_graphs_pay_their_precisions_start_up_cost(prep):
    base, per = _pair(prep)
    assert [o.layer for o in cost_model.graph_ops(prep)] == list(LAYERS)
    for p, us in START.items():
        uniform = {l: p for l in LAYERS}
        assert per.predict_ms(uniform) - base.predict_ms(uniform) == pytest.approx(us / 1e3, rel=1e-9), p


@pytest.mark.parametrize("mix", [{"c1": "float", "c2": "a8w8", "add": "a8w8"},
                                 {"c1": "a16w8", "c2": "float", "add": "a8w8"},
                                 {"c1": "float", "c2": "float", "add": "a16w8"}])
def test_a_hybrid_pays_the_op_weighted_mean_not_its_widest_precision(prep, mix):
    base, per = _pair(prep)
    want = sum(START[mix[l]] for l in LAYERS) / len(LAYERS) / 1e3     # one op per layer: by hand
    got = per.predict_ms(mix) - base.predict_ms(mix)                  # the same edges are paid in both
    assert got == pytest.approx(want, rel=1e-9)
    assert got < max(START[p] for p in mix.values()) / 1e3 - 1e-6    # the widest-precision rule would say more


def test_one_start_up_cost_stays_a_fixed_cost(prep):
    """A profile with one value ("a8w8" only: every older profile) charges it whatever the precisions, in
    fixed_ms, and leaves the layers' prices as they were."""
    base = cost_model.from_device_profile(prep, device_profiles.from_json(_obj({"a8w8": 0}), "t0"), model="m", scale=1)
    one = cost_model.from_device_profile(prep, device_profiles.from_json(_obj({"a8w8": 150}), "t2"), model="m", scale=1)
    assert one.fixed_ms - base.fixed_ms == pytest.approx(0.150)
    assert one.layer_ms == base.layer_ms


def test_a_tflite_pays_the_start_up_cost_of_its_ops_precisions(prep, tmp_path):
    from deploy.latency.predict import predict_tflite
    path = tmp_path / "m.tflite"
    path.write_bytes(prep.float_tflite)
    got = predict_tflite(path, device_profiles.from_json(_obj(START), "t1"))
    row = next(r for r in got["breakdown"] if r["layer"] == "(invoke)")
    assert row["ms"] == pytest.approx(START["float"] / 1e3)    # every op of the float model is float
    assert invoke_ms(device_profiles.from_json(_obj(START), "t1"), {"a8w8": 3, "float": 1}) == pytest.approx(
        (3 * 80 + 200) / 4 / 1e3)


def test_the_linear_fit_recovers_per_precision_start_up_costs():
    rng = np.random.default_rng(2)
    form = lf.FORMS["convs_none+elementwise_raw+io+invoke_per_precision"]
    groups = lf.groups_of(form)
    cols = lf.columns(("float", "a8w8"), groups)
    assert cols[0] == "invoke_ms:float" and "invoke_ms" not in cols
    feats = {f"g{i}": {"ops": int(rng.integers(10, 300)), **{g: float(rng.uniform(0.01, 5)) for g in groups}}
             for i in range(20)}
    x = [float(v) for v in rng.uniform(0.001, 0.5, len(cols))]
    rows = [{"model": m, "precision": p, "ms": lf.predict(f, p, {"cols": cols, "x": x})}
            for m, f in feats.items() for p in ("float", "a8w8")]
    got = lf.rates(lf.fit(rows, feats, ("float", "a8w8"), groups))
    assert got["float"]["invoke_us"] == pytest.approx(1e3 * x[cols.index("invoke_ms:float")], rel=1e-6)
    assert got["a8w8"]["invoke_us"] == pytest.approx(1e3 * x[cols.index("invoke_ms:a8w8")], rel=1e-6)


def test_the_roofline_fit_recovers_per_precision_start_up_costs():
    rng = np.random.default_rng(3)
    name = "roofline_max+convs_none+elementwise_raw+weights_separate+io+mem_shared+rel"
    form = rf.FORMS[name + rf.INVOKE_PP]
    assert "I_p" in form["form"] and "I_p" not in rf.FORMS[name]["form"]
    lay = rf.Layout(form, ("float", "a8w8"))
    graphs = {}
    for i in range(14):
        n = int(rng.integers(5, 40))
        ops = [[("CONV_2D", "ADD")[j % 2], ("conv_kxk", "add_mul")[j % 2], int(rng.integers(1e5, 1e8)), 0,
                int(rng.integers(1e4, 1e6)), 16, 16, 1, 9] for j in range(n)]
        graphs[f"g{i}"] = rf.op_arrays({"ops": ops, "io": [int(rng.integers(1e3, 1e5)), 100]}, form)
    x = np.exp(rng.uniform(np.log(1e-3), np.log(1.0), len(lay.names)))
    x[lay.at["invoke_ms:float"]], x[lay.at["invoke_ms:a8w8"]] = 0.2, 0.08
    rows = [{"model": m, "precision": p, "ms": rf.row_ms(a, p, x, lay)} for m, a in graphs.items() for p in ("float", "a8w8")]
    got = rf.fit(rows, graphs, form, ("float", "a8w8"))
    assert max(abs(e) for e in rf.rel_errors(rows, graphs, got)) < 1e-3
    r = rf.rates(got)
    assert r["float"]["invoke_us"] == pytest.approx(200, rel=0.05) and r["a8w8"]["invoke_us"] == pytest.approx(80, rel=0.05)
