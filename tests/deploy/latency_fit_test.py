"""The phone profiles' fit (bench/fit_published_profiles.py): standard CNNs only, reproducible, and
an NNLS that recovers what it should."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import fit_published_profiles as fit  # noqa: E402
from bench.published import latency_fit as lf  # noqa: E402
from bench.published.graphs import GRAPHS  # noqa: E402
from deploy.latency import device_profiles  # noqa: E402


@pytest.fixture(scope="module")
def built():
    return fit.build(reuse_cv=True)   # the roofline forms' CV scores as shipped (minutes to recompute; checked below)


def test_a_shipped_roofline_cv_score_is_what_the_cv_gives():
    """One roofline form's leave-one-model-out score recomputed from the fit rows equals the shipped table's
    (the table the form choice read; `python bench/fit_published_profiles.py` recomputes them all)."""
    from bench.published import roofline_fit as rf
    res = json.loads((ROOT / "bench/results/fit_published_profiles.json").read_text())
    roof = sorted((k for k in res["cv_by_form"] if k in rf.FORMS), key=lambda k: res["cv_by_form"][k]["median_abs"])
    assert len(roof) == len(rf.FORMS)
    published = json.loads(fit.PUBLISHED.read_text())
    graphs = json.loads(fit.WORK.read_text())["graphs"]
    assert fit._cv_roofline(published, graphs, roof[0]) == pytest.approx(res["cv_by_form"][roof[0]], abs=2e-4)


def test_no_sr_network_is_in_any_fit(built):
    res, _ = built
    fitted = {r["model"] for p in res["per_phone"].values() for r in p["fit_rows"]}
    fitted |= {m for p in res["per_phone"].values() for m in p["qnn_a16w8"]["models"]}
    sr = {n for n, g in GRAPHS.items() if g.role == "sr_test"}
    assert len(fitted) >= 15 and not fitted & sr
    assert res["chosen_form"] == min(res["cv_by_form"], key=lambda k: res["cv_by_form"][k]["median_abs"])


def test_shipped_profiles_are_what_the_fit_writes(built):
    _, profiles = built
    for name, prof in profiles.items():
        shipped = json.loads((device_profiles.PROFILE_DIR / f"{name}.json").read_text())
        assert json.loads(json.dumps(prof)) == shipped, f"{name}: rerun python bench/fit_published_profiles.py"


def test_nnls_recovers_known_rates_and_flags_unused_ones():
    rng = np.random.default_rng(0)
    feats = {f"g{i}": {"ops": int(rng.integers(10, 300)), "conv": float(rng.uniform(0.1, 50)),
                       "depthwise": float(rng.uniform(0, 0.3)), "elementwise": 0.0} for i in range(12)}
    truth = {"cols": lf.columns(("float", "a8w8")), "x": [0.1, 0.003, 1 / 5.0, 1 / 0.2, 0.0, 0.001, 1 / 20.0, 1 / 0.5, 0.0]}
    rows = [{"model": m, "precision": p, "ms": lf.predict(f, p, truth)} for m, f in feats.items() for p in ("float", "a8w8")]
    got = lf.rates(lf.fit(rows, feats, ("float", "a8w8")))
    assert got["float"]["rate"]["conv"] == pytest.approx(5000, rel=1e-6)
    assert got["a8w8"]["rate"]["depthwise"] == pytest.approx(500, rel=1e-6)
    assert got["invoke_us"] == pytest.approx(100, rel=1e-6)
    assert got["a8w8"]["rate"]["elementwise"] is None        # no elementwise work: not identified
    assert max(abs(e) for e in lf.leave_one_model_out(rows, feats, ("float", "a8w8"))) < 1e-6


def test_nnls_recovers_the_memory_terms_of_a_form_that_has_them():
    """weights / io / traffic are columns like the others: with them in the form, known rates come back."""
    rng = np.random.default_rng(1)
    form = dict(lf.FORMS["convs_none+elementwise_raw+traffic+weights+io"])
    groups = lf.groups_of(form)
    assert groups == ("conv", "depthwise", "elementwise", "traffic", "weights", "io")
    feats = {f"g{i}": {"ops": int(rng.integers(10, 300)), **{g: float(rng.uniform(0.01, 5)) for g in groups}}
             for i in range(20)}
    cols = lf.columns(("float", "a8w8"), groups)
    x = [0.05] + [float(v) for v in rng.uniform(0.001, 0.5, len(cols) - 1)]
    truth = {"cols": cols, "x": x}
    rows = [{"model": m, "precision": p, "ms": lf.predict(f, p, truth)} for m, f in feats.items() for p in ("float", "a8w8")]
    got = lf.fit(rows, feats, ("float", "a8w8"), groups)
    assert got["x"] == pytest.approx(x, rel=1e-6) and not got["not_identified"]
    assert lf.rates(got)["float"]["rate"]["io"] == pytest.approx(1e3 / x[cols.index("inv_rate:io:float")])


def test_graph_features_count_what_the_profile_prices():
    """traffic: elementwise ops only (convs' traffic is not a feature); weights: out x in/group x kernel."""
    g = {"io": [10, 20], "ops": [["CONV_2D", "conv_kxk", 900, 900, 500, 4, 2, 1, 9],
                                 ["ADD", "add_mul", 50, 64, 192, 0, 0, 0, 0]]}
    f = lf.features(g, lf.FORMS["convs_none+elementwise_raw+traffic+weights+io"])
    assert f == pytest.approx({"ops": 4, "conv": 900e-9, "depthwise": 0.0, "elementwise": 50e-9,
                               "traffic": 192e-9, "weights": 72e-9, "io": 30e-9})


def test_the_shipped_phone_profiles_price_the_fit_graphs_as_the_fit_predicts():
    """The product's per-op algebra (deploy/latency/op_pricing.op_ms) on a shipped profile, summed over a fit
    graph's ops + invoke + the 2 I/O ops' overhead + model I/O, equals the fit's own prediction of that row
    (3-significant-figure rates in the profile: within 1 %)."""
    from deploy.latency.op_pricing import op_ms
    res = json.loads((ROOT / "bench/results/fit_published_profiles.json").read_text())
    graphs = json.loads(fit.WORK.read_text())["graphs"]
    for phone, v in res["per_phone"].items():
        prof = device_profiles.load_profile(phone)
        convs, tiled = (prof.tiling["convs"], prof.tiling["elementwise"]) if prof.tile > 1 else ("none", False)
        for row in v["fit_rows"]:
            g, p = graphs[row["model"]], row["precision"]
            t = prof.invoke_overhead_us["a8w8"] / 1e3 + 2 * prof.op_overhead_us[p] / 1e3 + prof.io_ms(p, sum(g["io"]))
            for o in g["ops"]:
                t += op_ms(prof, o[1], p, lf.op_work(o, convs, tiled), o[4], o[5] * o[6] * o[8])
            want = row["published_ms"] * (1 + row["fitted_error"])
            assert t == pytest.approx(want, rel=1e-2), (phone, row["model"], p)
