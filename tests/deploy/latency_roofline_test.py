"""Roofline pricing (deploy/latency/op_pricing.py): a profile with a "roofline" block prices each op as
comb(compute, memory) + its overhead, by hand and by the product's two pricing paths alike, and the
fit's algebra (bench/published/roofline_fit.py) is the same one."""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from deploy.latency import cost_model, device_profiles
from deploy.latency.op_pricing import combine, op_ms

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.published import roofline_fit as rf  # noqa: E402

MEM = {"a8w8": 100.0, "a16w8": 100.0, "float": 100.0}                  # GB/s
ACT = {"a8w8": 1, "a16w8": 2, "float": 2}                              # bytes per activation element
WTS = {"a8w8": 1, "a16w8": 1, "float": 2}                              # bytes per weight element
#: the small graph's ops by hand: (layer, class, MACs / output elements, activation elements read + written with
#: channels rounded up to 32, weight elements)
OPS = [("c1", "conv_kxk", 8 * 8 * 9 * 3 * 16, 64 * 32 + 64 * 32, 16 * 9 * 3),
       ("c2", "conv_1x1", 8 * 8 * 16 * 16, 64 * 32 + 64 * 32, 16 * 16),
       ("add", "add_mul", 8 * 8 * 16, 3 * 64 * 32, 0)]


@pytest.fixture(scope="module")
def prep(conv_add_prep):
    return conv_add_prep


def _base() -> dict:
    obj = json.loads((device_profiles.PROFILE_DIR / "htp_npu.json").read_text())
    obj["op_overhead_us"] = {"a8w8": 0.5, "a16w8": 0.7, "float": 0.9, "source": "test"}
    return obj


def _profile(combine_: str = "max", weights: bool = True, **extra):
    roof = {"combine": combine_, "channels": 32, "memory_GBps": dict(MEM), "activation_bytes": dict(ACT),
            **({"weight_bytes": dict(WTS)} if weights else {}), "source": "test"}
    return device_profiles.from_json({**_base(), "roofline": roof, **extra}, "t")


def _hand(obj: dict, klass: str, p: str, work: int, traffic: int, weights: int, k: float, with_w: bool) -> float:
    compute = 1e3 * work / (obj["ops"][klass][p] * 1e9)
    memory = 1e3 * (traffic * ACT[p] + (weights * WTS[p] if with_w else 0)) / (MEM[p] * 1e9)
    both = max(compute, memory) if k == math.inf else math.hypot(compute, memory)
    return both + obj["op_overhead_us"][p] / 1e3


@pytest.mark.parametrize("comb,k,with_w", [("max", math.inf, True), ("max", math.inf, False), ("k2", 2.0, True)])
def test_a_small_graph_priced_by_hand_and_by_the_cost_model(prep, comb, k, with_w):
    prof = _profile(comb, with_w)
    cm = cost_model.from_device_profile(prep, prof, model="m", scale=1)
    obj = _base()
    for layer, klass, work, traffic, weights in OPS:
        for p in ("a8w8", "a16w8", "float"):
            assert cm.layer_ms[layer][p] == pytest.approx(_hand(obj, klass, p, work, traffic, weights, k, with_w),
                                                          rel=1e-12), (layer, p)
    # the hard max is really binding on both sides here: c1 compute-bound, the add memory-bound (a8w8)
    c1 = OPS[0]
    assert 1e3 * c1[2] / (obj["ops"]["conv_kxk"]["a8w8"] * 1e9) > 1e3 * c1[3] / (MEM["a8w8"] * 1e9)
    add = OPS[2]
    assert 1e3 * add[2] / (obj["ops"]["add_mul"]["a8w8"] * 1e9) < 1e3 * add[3] / (MEM["a8w8"] * 1e9)


def test_a_tflite_is_priced_with_the_same_roofline(prep, tmp_path):
    from deploy.latency.predict import predict_tflite
    path = tmp_path / "m.tflite"
    path.write_bytes(prep.float_tflite)
    prof = _profile("max", True)
    got = predict_tflite(path, prof)
    ops = [r for r in got["breakdown"] if r["kind"] == "op"]
    assert [r["class"] for r in ops] == [klass for _, klass, *_ in OPS]
    for r, (_, klass, w, t, wt) in zip(ops, OPS):
        assert r["ms"] == pytest.approx(_hand(_base(), klass, "float", w, t, wt, math.inf, True), rel=1e-12)


def test_null_memory_rate_leaves_compute_and_overhead_only():
    prof = _profile("max", True)
    roof = {**prof.roofline, "memory_GBps": {"a8w8": None, "a16w8": None, "float": None}}
    prof0 = device_profiles.from_json({**_base(), "roofline": roof}, "t")
    assert op_ms(prof0, "add_mul", "a8w8", 1e6, 1e9, 0) == pytest.approx(1e3 * 1e6 / 20e9 + 0.5e-3)


def test_a_profile_without_roofline_is_priced_as_before():
    prof = device_profiles.from_json(_base(), "t")
    assert op_ms(prof, "conv_kxk", "a8w8", 1e6, 1e9, 1e9) == pytest.approx(prof.op_ms("conv_kxk", "a8w8", 1e6))


@pytest.mark.parametrize("bad,match", [
    ({"combine": "sum"}, "combine"), ({"source": ""}, "source"), ({"memory_GBps": {"a8w8": -1}}, "memory_GBps"),
    ({"activation_bytes": {"a8w8": 1}}, "activation_bytes")])
def test_a_bad_roofline_block_is_refused(bad, match):
    roof = {"combine": "max", "channels": 32, "memory_GBps": dict(MEM), "activation_bytes": dict(ACT), "source": "t", **bad}
    with pytest.raises(device_profiles.LatencyError, match=match):
        device_profiles.from_json({**_base(), "roofline": roof}, "t")


def test_roofline_and_activation_traffic_together_are_refused():
    with pytest.raises(device_profiles.LatencyError, match="activation_traffic"):
        _profile(activation_traffic={"a8w8": 1.0, "a16w8": 1.0, "float": 1.0, "source": "t"})


def test_combine_is_the_p_norm():
    assert combine(3.0, 4.0, 2.0) == pytest.approx(5.0)
    assert combine(3.0, 4.0, math.inf) == 4.0
    assert combine(0.0, 0.0, 2.0) == 0.0


# ------------------------------------------------------------------ the fit's side (bench/published/roofline_fit.py)

def _graphs(rng, n=14):
    out = {}
    for i in range(n):
        k = int(rng.integers(5, 40))
        ops = []
        for j in range(k):
            conv = j % 3 != 2
            macs, act = float(rng.uniform(1e6, 5e8)), float(rng.uniform(1e5, 3e7))
            ops.append(["CONV_2D" if conv else "ADD", "conv_kxk" if conv else "add_mul", macs if conv else act / 3,
                        macs if conv else act / 3, act, 32 if conv else 0, 32 if conv else 0, 1 if conv else 0,
                        9 if conv else 0])
        out[f"g{i}"] = {"ops": ops, "io": [int(rng.integers(1e4, 1e6)), int(rng.integers(1e3, 1e6))]}
    return out


def test_the_fit_recovers_a_known_roofline_and_prices_like_the_profile():
    rng = np.random.default_rng(3)
    form = rf.FORMS["roofline_max+convs_none+elementwise_raw+weights_separate+io+mem_shared"]
    graphs = _graphs(rng)
    arrays = {m: rf.op_arrays(g, form) for m, g in graphs.items()}
    lay = rf.Layout(form, ("float", "a8w8"))
    truth = np.array([{"invoke_ms": 0.1}.get(n, 0.0) for n in lay.names])
    val = {"op_ms": 0.004, "inv_rate:conv": 0.3, "inv_rate:depthwise": 1.0, "inv_rate:elementwise": 8.0,
           "inv_rate:weights": 20.0, "inv_rate:io": 2.0, "inv_mem": 25.0}
    for i, n in enumerate(lay.names):
        if n != "invoke_ms":
            base = n.rsplit(":", 1)[0]
            truth[i] = val[base] * (2.0 if n.endswith(":float") else 1.0)
    rows = [{"model": m, "precision": p, "ms": rf.row_ms(a, p, truth, lay)} for m, a in arrays.items()
            for p in ("float", "a8w8")]
    got = rf.fit(rows, arrays, form, ("float", "a8w8"))
    assert max(abs(e) for e in rf.rel_errors(rows, arrays, got)) < 1e-4
    x = dict(zip(got["names"], got["x"]))
    assert x["inv_mem:shared"] == pytest.approx(25.0, rel=1e-3)
    assert x["inv_rate:conv:a8w8"] == pytest.approx(0.3, rel=1e-3)
    # the fit's per-op algebra is op_pricing's: one op priced by both
    prof = _profile("max", False)
    a8 = {"a8w8": 1.0}
    obj = _base()
    t_fit = rf.combine(np.array([1e9 / 1e9 / 320 * 1e3]), np.array([3e7 / 1e9 * a8["a8w8"] * 1e3 / 100]), math.inf)[0]
    assert op_ms(prof, "conv_kxk", "a8w8", 1e9, 3e7, 0) == pytest.approx(t_fit + obj["op_overhead_us"]["a8w8"] / 1e3)


def test_the_analytic_jacobian_is_the_derivative():
    from scipy.optimize import approx_fprime
    rng = np.random.default_rng(4)
    graphs = _graphs(rng, 6)
    for name in ("roofline_k2+convs_none+elementwise_raw+weights_in_max+io+mem_per_precision+split",
                 "roofline_max+convs_dense+elementwise_tiled+weights_separate+io+mem_shared+rel"):
        form = rf.FORMS[name]
        arrays = {m: rf.op_arrays(g, form) for m, g in graphs.items()}
        lay = rf.Layout(form, ("float", "a8w8"))
        rows = [{"model": m, "precision": p, "ms": 1.0 + i} for i, m in enumerate(arrays) for p in ("float", "a8w8")]
        st = rf._Stack(rows, arrays, lay)
        z = rng.normal(-2, 1, len(lay.names))
        num = np.array([approx_fprime(z, lambda zz, i=i: st.residuals(zz)[i], 1e-7) for i in range(len(rows))])
        assert np.abs(st.jacobian(z) - num).max() < 1e-5
        x = np.exp(z)
        assert st.ms_of(x) == pytest.approx([rf.row_ms(arrays[r["model"]], r["precision"], x, lay) for r in rows])


def test_an_io_bytes_form_fits_one_io_rate_priced_at_each_precisions_io_bytes():
    """AI Hub's float models read and write float32, its quantized ones uint8 / uint16 (--quantize_io): the
    "+io_bytes" forms fit ONE I/O byte rate, which prices float I/O at 4x and a16w8 at 2x the a8w8 I/O."""
    rng = np.random.default_rng(5)
    name, form = rf.io_bytes_variant("roofline_max+convs_none+elementwise_raw+weights_separate+io+mem_shared")
    assert rf.ALL_FORMS[name] == form and "io bytes / D" in form["form"] and rf.IO_BYTES == {
        "float": 4.0, "a8w8": 1.0, "a16w8": 2.0}
    graphs = _graphs(rng)
    arrays = {m: rf.op_arrays(g, form) for m, g in graphs.items()}
    lay = rf.Layout(form, ("float", "a8w8"))
    assert "inv_rate:io:shared" in lay.names and not any(n.startswith("inv_rate:io:f") for n in lay.names)
    val = {"invoke_ms": 0.1, "op_ms": 0.004, "inv_rate:conv": 0.3, "inv_rate:depthwise": 1.0,
           "inv_rate:elementwise": 8.0, "inv_rate:weights": 20.0, "inv_rate:io": 0.5, "inv_mem": 25.0}
    truth = np.array([val[n if n == "invoke_ms" else n.rsplit(":", 1)[0]] * (2.0 if n.endswith(":float") else 1.0)
                      for n in lay.names])
    a = next(iter(arrays.values()))
    io = lay.at["inv_rate:io:shared"]
    no_io = truth.copy()
    no_io[io] = 0.0
    io_ms = {p: rf.row_ms(a, p, truth, lay) - rf.row_ms(a, p, no_io, lay) for p in ("float", "a8w8")}
    assert io_ms["float"] == pytest.approx(4 * io_ms["a8w8"]) and io_ms["a8w8"] == pytest.approx(a["io"] * 0.5)
    rows = [{"model": m, "precision": p, "ms": rf.row_ms(ar, p, truth, lay)} for m, ar in arrays.items()
            for p in ("float", "a8w8")]
    got = rf.fit(rows, arrays, form, ("float", "a8w8"))
    assert max(abs(e) for e in rf.rel_errors(rows, arrays, got)) < 1e-4
    r = rf.rates({**got, "precisions": ["float", "a8w8", "a16w8"]})
    # G elements per second = 1e3 / (0.5 ms per G bytes x bytes per element)
    assert [r[p]["rate"]["io"] for p in ("a8w8", "a16w8", "float")] == pytest.approx([2000, 1000, 500], rel=1e-3)
    st = rf._Stack(rows, arrays, lay)
    z = rng.normal(-2, 1, len(lay.names))
    from scipy.optimize import approx_fprime
    num = np.array([approx_fprime(z, lambda zz, i=i: st.residuals(zz)[i], 1e-7) for i in range(len(rows))])
    assert np.abs(st.jacobian(z) - num).max() < 1e-5
