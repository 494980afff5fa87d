"""The search knows the NPU: placement from the real Qualcomm compiler prices CPU fallbacks and
NPU<->CPU switches (tiny models, compiles take ~0.5 s)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from deploy.errors import SrdeployError

pytest.importorskip("onnxruntime_qnn")

from deploy.commands import search_jobs  # noqa: E402
from deploy.convert.sources import ModelSource  # noqa: E402
from deploy.data.io_convention import IOConvention  # noqa: E402
from deploy.latency import cost_model  # noqa: E402
from deploy.latency import npu_cost  # noqa: E402
from deploy.latency.device_profiles import load_profile  # noqa: E402
from deploy.policy_search import session  # noqa: E402
from deploy.policy_search.config import SearchConfig  # noqa: E402
from models._keras import keras, tf  # noqa: E402

HW, R, C = (16, 16), 2, 3
TARGET = "qualcomm:SM8650"
SEARCHED = ("a8w8", "a16w8")


def _tiny(rank6: bool) -> keras.Model:
    """Convs + residual + pixel shuffle written with tf ops: rank-6 (HTP refuses it: "incorrect
    Rank 6", so the shuffle stays on the CPU) or the equal rank-4 form (HTP takes it)."""
    keras.utils.set_random_seed(3)
    small = keras.initializers.RandomNormal(stddev=0.05)
    h, w = HW
    x_in = keras.Input((*HW, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="head")(x_in)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body")(x)
    x = keras.layers.Add(name="skip")([x, y])
    x = keras.layers.Conv2D(R * R * C, 3, padding="same", kernel_initializer=small, name="tail")(x)
    x = keras.layers.Add(name="residual")([x, keras.layers.Concatenate(name="repeat")([x_in] * 4)])
    if rank6:
        shuffle = lambda t: tf.reshape(tf.transpose(tf.reshape(t, [1, h, w, R, R, C]), (0, 1, 3, 2, 4, 5)),  # noqa: E731
                                       [1, h * R, w * R, C])
    else:
        shuffle = lambda t: tf.reshape(tf.transpose(tf.reshape(t, [h, w, R, R * C]), (0, 2, 1, 3)),  # noqa: E731
                                       [1, h * R, w * R, C])
    return keras.Model(x_in, keras.layers.Lambda(shuffle, name="shuffle")(x))


def _setup(rank6: bool, hr_dir, cache_dir=None) -> session.Setup:
    src = ModelSource("tiny6" if rank6 else "tiny4", 2, _tiny(rank6), IOConvention(), False, None)
    return session.setup(src, SearchConfig(input_size=HW, npu=TARGET, npu_cache_dir=cache_dir, calib_dir=hr_dir,
                                           calib_images=3, val_dir=hr_dir, val_images=3))


@pytest.fixture(scope="module")
def rank6(hr_dir, tmp_path_factory):
    return _setup(True, hr_dir, tmp_path_factory.mktemp("npu_cache"))


@pytest.fixture(scope="module")
def rank4(hr_dir):
    return _setup(False, hr_dir)


def test_cpu_placed_layer_is_priced_at_the_cpu_rate_with_its_switches(rank6):
    npu, cost = rank6.npu, rank6.cost
    htp, cpu = load_profile("htp_npu"), load_profile("desktop_xnnpack")
    switch_ms = htp.npu_cpu_switch["us"] / 1e3
    for p in SEARCHED:
        pl = npu.uniform[p]
        # the compiler's own verdict: the rank-6 RESHAPE/TRANSPOSE/RESHAPE stay on the CPU, 2 partitions
        assert [c.op for c in pl.cpu_ops] == ["RESHAPE", "TRANSPOSE", "RESHAPE"]
        assert {c.layer for c in pl.cpu_ops} == {"shuffle"} and any("Rank 6" in c.reason for c in pl.cpu_ops)
        assert pl.partitions == 2 and pl.ops_on_npu == pl.ops_total - 3
        assert pl.switch_owners == ("shuffle", "shuffle")   # NPU -> CPU shuffle -> NPU (output DEQUANTIZE)
        shuffle_ops = [o for o in npu.ops if o.layer == "shuffle"]
        assert cost.layer_ms["shuffle"][p] == pytest.approx(
            sum(cpu.op_ms(o.klass, p, o.work) for o in shuffle_ops) + 2 * switch_ms, rel=1e-12)
        for layer in ("head", "body", "tail"):   # on the NPU: the NPU profile's rate
            assert cost.layer_ms[layer][p] == pytest.approx(
                sum(htp.op_ms(o.klass, p, o.work) for o in npu.ops if o.layer == layer), rel=1e-12)
        # the linear model is exact for the uniform policies
        uni = {l: p for l in rank6.prep.layers}
        assert cost.predict_ms(uni) == pytest.approx(npu.placed_ms(uni, pl), rel=1e-12)
    # the shuffle on the CPU makes it dearer than the all-NPU pricing of the same profile
    plain = cost_model.from_device_profile(rank6.prep, "htp_npu", model="tiny6", scale=2)
    assert cost.layer_ms["shuffle"]["a8w8"] > plain.layer_ms["shuffle"]["a8w8"] + 2 * switch_ms
    assert "desktop_xnnpack" in cost.source and "no phone CPU profile" in cost.source
    assert "SM8650" in rank6.profile_label


def test_rank4_shuffle_is_all_npu_and_priced_as_the_profile(rank4):
    plain = cost_model.from_device_profile(rank4.prep, "htp_npu", model="tiny4", scale=2)
    for p in SEARCHED:
        pl = rank4.npu.uniform[p]
        assert pl.whole and pl.ops_on_npu == pl.ops_total and pl.switches == 0 and not pl.cpu_ops
        for layer in rank4.prep.layers:
            assert rank4.cost.layer_ms[layer][p] == pytest.approx(plain.layer_ms[layer][p], rel=1e-12)
    assert rank4.cost.fixed_ms == pytest.approx(plain.fixed_ms)


def test_search_report_carries_the_real_placement(rank6, tmp_path):
    r = search_jobs.run_search(rank6.with_run(budget_db=0.5), tmp_path / "p.json", progress=False)
    on_disk = json.loads(search_jobs.search_report_path(tmp_path / "p.json").read_text())
    n = on_disk["npu"]
    assert n["target"] == TARGET and n["placement"]["soc"] == "SM8650"
    assert n["placement"]["partitions"] == 2 and n["placement"]["npu_cpu_switches"] == 2
    assert [c["op"] for c in n["placement"]["cpu_ops"]] == ["RESHAPE", "TRANSPOSE", "RESHAPE"]
    assert all(c["layer"] == "shuffle" and c["reason"] for c in n["placement"]["cpu_ops"])
    assert any("Rank 6" in c["reason"] for c in n["placement"]["cpu_ops"])
    assert n["matches_linear_model"] and n["differences"] == []
    assert r["predicted_ms"] == n["predicted_ms_placed"] == pytest.approx(n["predicted_ms_linear"], abs=1e-3)
    assert "desktop_xnnpack" in n["note"]
    table = search_jobs.search_table(r)
    assert "SM8650 placement of the searched hybrid" in table and "TRANSPOSE (layer shuffle)" in table
    assert "as the search's linear model assumed" in table


def test_compiles_are_cached_by_model_sha(rank6):
    cache = rank6.npu.cache
    a8 = rank6.oracle.build(rank6.oracle.uniform("a8w8"))[0]
    before = cache.compiles
    assert rank6.npu.place(a8) == rank6.npu.uniform["a8w8"]
    assert cache.compiles == before                       # in memory
    fresh = npu_cost.PlacementCache(TARGET, cache.cache_dir)
    assert fresh.report(a8)["partitions"] == 2 and fresh.compiles == 0 and fresh.hits == 1   # from the file
    assert len(list(cache.cache_dir.glob("*_SM8650.json"))) >= 2


def test_a_placement_the_linear_model_did_not_assume_is_reported_and_priced(rank6):
    """The final model placed differently (here: a fake report saying the shuffle went whole on
    the NPU) is said to differ and priced on its real placement."""
    npu = rank6.npu
    a8 = rank6.oracle.build(rank6.oracle.uniform("a8w8"))[0]
    fake_bytes = a8 + b"\0"
    rep = dict(npu.cache.report(a8))
    rep.update(cpu_ops=[], partitions=1, ops_on_npu=rep["ops_total"])
    npu.cache._mem[npu_cost.sha256_bytes(fake_bytes)] = rep   # noqa: SLF001 - inject the compile
    uni = {l: "a8w8" for l in rank6.prep.layers}
    out = npu.check(uni, fake_bytes)
    assert not out["matches_linear_model"]
    assert any("on the NPU but assumed on the CPU" in d and "TRANSPOSE(shuffle)" in d for d in out["differences"])
    assert any("0 NPU<->CPU switch(es), 2 assumed" in d for d in out["differences"])
    assert out["predicted_ms_placed"] < out["predicted_ms_linear"]
    table = "\n".join(search_jobs.npu_lines(out))
    assert "DIFFERS" in table


def test_without_the_npu_extra_one_line_says_how_to_install(monkeypatch, hr_dir):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime_qnn" else real(n, *a))
    src = ModelSource("tiny6", 2, _tiny(True), IOConvention(), False, None)
    with pytest.raises(SrdeployError, match=r'pip install -e "\.\[npu\]"') as e:
        session.setup(src, SearchConfig(input_size=HW, npu=TARGET, calib_dir=hr_dir, val_dir=hr_dir))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kw, match", [({"npu": "qualcomm:SM0000"}, "unknown SoC.*SM8650"),
                                       ({"npu": TARGET, "device_profile": "desktop_xnnpack"}, "htp_npu"),
                                       ({"npu": TARGET, "op_profiles": ["a", "b"]}, "op_profiles")])
def test_bad_npu_requests_fail_before_any_work(kw, match):
    src = ModelSource("tiny6", 2, _tiny(True), IOConvention(), False, None)
    with pytest.raises(SrdeployError, match=match):
        session.setup(src, SearchConfig(input_size=HW, **kw))


def test_switches_follow_execution_order():
    P = npu_cost.PlacedOp
    cpu = [P(1, "RESHAPE", ("a",), "", 4, "s"), P(2, "TRANSPOSE", ("b",), "", 5, "s"), P(4, "MINIMUM", ("c",), "", 7, "m")]
    # order: NPU, s, s, NPU, m, NPU  -> 4 switches
    assert npu_cost._switch_owners(3, cpu) == ("s", "s", "m", "m")
    assert npu_cost._switch_owners(1, []) == ()
    assert np.isclose(len(npu_cost._switch_owners(2, cpu[:2])), 2)
