"""evaluate --npu_emulate warns in one line when the NPU's arithmetic moves PSNR_Y (issue 28/31)."""
from deploy.evaluation.emulated import WARN_DB, NpuComparison
from deploy.evaluation.evaluator import EvalResult, ImageScore


def _result(psnrs):
    return EvalResult("m", 3, "d", tuple(ImageScore(f"img{i}", p, 0.9, 20.0, 0.8) for i, p in enumerate(psnrs)), 1.0, 100)


def test_warning_only_above_the_threshold_and_names_the_worst_image():
    cpu = _result([30.0, 31.0])
    quiet = NpuComparison(cpu, _result([30.0 + WARN_DB / 2, 31.0]), "qualcomm:SM8650")
    assert quiet.warning() is None and "warning" not in quiet.to_json()["npu_emulated"]
    loud = NpuComparison(cpu, _result([22.0, 30.5]), "qualcomm:SM8650", float_model=True)
    w = loud.warning()
    assert w.startswith("warning: on SM8650 (emulated) PSNR_Y is -4.25 dB") and "-8.00 on img0" in w
    assert "fp16" in w and "\n" not in w and loud.to_json()["npu_emulated"]["warning"] == w
    assert "fp16" not in NpuComparison(cpu, _result([22.0, 30.5]), "qualcomm:SM8650").warning()
