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
    return fit.build()


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
