"""The search judged on the NPU's own arithmetic (`numerics="npu"`, the default with an NPU target):
reference, answer and near-target candidates measured in QNN HTP emulation of the real compiled
model (tiny models at 16x16, real compiler and emulator)."""
from __future__ import annotations

import numpy as np
import pytest

from deploy.errors import SrdeployError

pytest.importorskip("onnxruntime_qnn")

from deploy.evaluation.api import npu_interpreter_factory  # noqa: E402
from deploy.npu import NpuEmulator  # noqa: E402
from deploy.evaluation.runners import TFLiteRunner  # noqa: E402
from deploy.policy_search import fast_oracle, session  # noqa: E402
from deploy.policy_search.api import search_with_setup  # noqa: E402
from deploy.policy_search.config import SearchConfig  # noqa: E402
from deploy.policy_search.npu_judge import EmulatedJudge, resolve_numerics  # noqa: E402
from tests.deploy.npu_search_test import HW, TARGET, _setup  # noqa: E402


@pytest.fixture(scope="module")
def on_npu(hr_dir, tmp_path_factory):
    s = _setup(False, hr_dir, tmp_path_factory.mktemp("npu_judge_cache"))
    yield s
    s.close()


def test_with_an_npu_target_the_judge_is_the_emulated_npu(on_npu):
    judge = on_npu.oracle.judge
    assert isinstance(judge, EmulatedJudge) and judge.soc.name == "SM8650"
    assert fast_oracle.numerics_of(on_npu.oracle).startswith("SM8650 NPU")
    assert session.provenance(on_npu)["numerics"] == fast_oracle.numerics_of(on_npu.oracle)


def test_judge_measures_what_evaluate_npu_emulate_measures(on_npu):
    """The judge's per-image PSNRs equal the evaluation path's emulator run on the same patches,
    and differ from LiteRT's CPU kernels (else this test could not tell them apart)."""
    o = on_npu.oracle
    a = o.uniform("a8w8")
    model = o.build(a, smoke=False)[0]
    factory, soc, _ = npu_interpreter_factory(model, TARGET)
    runner = TFLiteRunner(model, o.scale, convention=o.convention, interpreter_factory=factory, workers=1)
    expected = o.val.psnr_y_images(runner.map(o.val.lr), o.scale)
    np.testing.assert_allclose(o.judge.image_psnrs(a), expected, rtol=0, atol=1e-9)
    cpu = o.val.psnr_y_images(TFLiteRunner(model, o.scale, convention=o.convention).map(o.val.lr), o.scale)
    assert np.max(np.abs(cpu - expected)) > 1e-6


def test_emulated_psnrs_are_kept_on_disk_and_reused(on_npu):
    o = on_npu.oracle
    model = o.build(o.uniform("a16w8"), smoke=False)[0]
    first = o.judge.measure_images(model)
    again = EmulatedJudge(o.prep, soc="SM8650", cache_dir=o.judge.cache_dir, model=o.model, scale=o.scale,
                          calib=o.calib, val=o.val, convention=o.convention, qsv=o.qsv)
    np.testing.assert_array_equal(again.measure_images(model), first)
    assert again.emulated_models == 0 and list(o.judge.cache_dir.glob("emulated-*.json"))


def test_simulation_moved_onto_the_judge_is_exact_for_the_uniform_models(on_npu):
    o = on_npu.oracle
    run = o.for_search(0.1)  # a view for one run: the oracle's own psnr() is unchanged
    for p in ("a8w8", "a16w8"):
        u = o.uniform(p)
        moved = run.toward_judge(u, o.image_psnrs(u))
        np.testing.assert_allclose(moved, o.judge.image_psnrs(u), rtol=0, atol=1e-9)
    assert o.psnr(o.uniform("a8w8")) == pytest.approx(float(np.mean(o.image_psnrs(o.uniform("a8w8")))))


def test_search_budget_holds_on_the_emulated_npu(on_npu):
    out = search_with_setup(on_npu.with_run(budget_db=0.05))
    r = out.report
    assert r["numerics"].startswith("SM8650 NPU") and r["litert_check"]["numerics"] == r["numerics"]
    judge = on_npu.oracle.judge
    ref = float(np.mean(judge.image_psnrs(judge.uniform("a16w8"))))
    got = float(np.mean(judge.measure_images(on_npu.oracle.build(dict(out.policy.layers), smoke=False)[0])))
    assert r["psnr_y"] == pytest.approx(got, abs=1e-4) and r["reference_psnr_y"] == pytest.approx(ref, abs=1e-4)
    assert got >= ref - 0.05 - 1e-9


def test_numerics_npu_needs_an_npu_target():
    assert resolve_numerics("auto", None) == "cpu" and resolve_numerics("auto", TARGET) == "npu"
    assert resolve_numerics("cpu", TARGET) == "cpu"
    with pytest.raises(SrdeployError, match="--npu"):  # the value and the combination: checked by the config
        SearchConfig(numerics="npu")
    with pytest.raises(SrdeployError, match="numerics must be one of"):
        SearchConfig(numerics="htp", npu=TARGET)


def _prelu_net():
    """conv -> PReLU (rewritten relu(x) - a*relu(-x): a standalone RELU reads the conv) -> conv,
    plus the input repeated (a residual, so the output is an image and rounding shows) -> shuffle."""
    from models._keras import keras
    from models.layers import PixelShuffle
    keras.utils.set_random_seed(5)
    x_in = keras.Input((*HW, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, padding="same", name="head")(x_in)
    x = keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.2), name="act")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail",
                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))(x)
    x = keras.layers.Add(name="residual")([x, keras.layers.Concatenate(name="repeat")([x_in] * 4)])
    return keras.Model(x_in, PixelShuffle(2, name="shuffle")(x))


def test_htp_fusions_are_marked_only_for_a_relu_reading_a_conv():
    from deploy.convert.fake_quant import _Op, _htp_fused_inputs
    op = lambda kind, ins, out: _Op(kind, ins, out, {}, {}, {}, {})  # noqa: E731
    ops = [op("CONV_2D", (0, 1, 2), 3), op("RELU", (3,), 4), op("MUL", (3, 5), 6), op("RELU", (6,), 7),
           op("ADD", (4, 7), 8)]
    assert _htp_fused_inputs(ops) == [(), (0,), (), (), ()]


def test_simulation_follows_htp_where_litert_rounds_twice(hr_dir, tmp_path):
    """A RELU after a conv: HTP computes it from the accumulator (one rounding), LiteRT from the
    rounded int8 output. The "htp" simulation is closer to the emulated NPU than the "litert" one,
    and within 0.05 dB of it; a run resumed at a checkpoint is bit-identical to a full one."""
    from deploy.convert import fake_quant
    from deploy.convert.sources import ModelSource
    from deploy.data.io_convention import IOConvention
    src = ModelSource("tinyprelu", 2, _prelu_net(), IOConvention(), False, None)
    s = session.setup(src, SearchConfig(input_size=HW, npu=TARGET, npu_cache_dir=tmp_path, calib_dir=hr_dir,
                                        calib_images=3, val_dir=hr_dir, val_images=3))
    try:
        o = s.oracle
        assert o.sim.arithmetic == "htp" and any(o.sim.fused_inputs)
        litert = fake_quant.Simulator(o.prep.float_tflite)
        u = o.uniform("a8w8")
        model = o.quantized(u)
        emulator = NpuEmulator(o.judge.compiled(model), "SM8650")
        emulated = np.concatenate([emulator(x[None]) for x in o._x])  # noqa: SLF001
        htp = o.sim.run(o._x, o.simulated(u))  # noqa: SLF001
        lit = litert.run(o._x, o.simulated(u))  # noqa: SLF001
        err_htp, err_lit = np.mean(np.abs(htp - emulated)), np.mean(np.abs(lit - emulated))
        assert err_htp < 0.6 * err_lit, (err_htp, err_lit)
        args = o.sim.op_args(o.quantized(u))
        full = o.sim._graph(o.sim._tf.constant(o._x), args[0]).numpy()  # noqa: SLF001
        np.testing.assert_array_equal(o.sim.run(o._x, args), full)
    finally:
        s.close()
