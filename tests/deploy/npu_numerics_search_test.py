"""The search judged on the NPU's own arithmetic (`numerics="npu"`, the default with an NPU target):
reference, answer and near-target candidates measured in QNN HTP emulation of the real compiled
model (tiny models at 16x16, real compiler and emulator)."""
from __future__ import annotations

import numpy as np
import pytest

from deploy.errors import SrdeployError

pytest.importorskip("onnxruntime_qnn")

from deploy.evaluation.api import npu_interpreter_factory  # noqa: E402
from deploy.evaluation.runners import TFLiteRunner  # noqa: E402
from deploy.policy_search import fast_oracle, session  # noqa: E402
from deploy.policy_search.api import search_with_setup  # noqa: E402
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
    o.arm("a16w8", 0.1)
    try:
        for p in ("a8w8", "a16w8"):
            u = o.uniform(p)
            moved = o.toward_judge(u, o.image_psnrs(u))
            np.testing.assert_allclose(moved, o.judge.image_psnrs(u), rtol=0, atol=1e-9)
    finally:
        o.disarm()


def test_search_budget_holds_on_the_emulated_npu(on_npu):
    out = search_with_setup(on_npu, budget_db=0.05)
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
    with pytest.raises(SrdeployError, match="--npu"):
        resolve_numerics("npu", None)
    with pytest.raises(SrdeployError, match="--numerics must be one of"):
        resolve_numerics("htp", TARGET)
