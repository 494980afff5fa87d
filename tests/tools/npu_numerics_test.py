"""NPU numerics and placement through the user's tools: `evaluate.py --npu_emulate` (CPU vs emulated
HTP quality) and `convert.py --npu` (placement warnings + the report's `npu` block), with the real
Qualcomm compiler and HTP emulator on tiny models."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_tool

pytest.importorskip("onnxruntime_qnn")


@pytest.fixture(scope="module")
def espcn_int8(tmp_path_factory, random_weights, hr_dir) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("npu_tools") / "espcn.tflite"
    p = run_tool("convert", "--model", "espcn", "--scale", "2", "--precision", "int8", "--input_size", "16x16",
                 "--weights", str(random_weights("espcn", 2)), "--calib_dir", str(hr_dir), "--calib_images", "2",
                 "--out", str(out), "--npu", "qualcomm:SM8650", "--npu", "SM8550")
    assert p.returncode == 0, p.stderr
    return out, p


def test_convert_npu_records_placement_and_says_it(espcn_int8):
    out, p = espcn_int8
    npu = json.loads(out.with_suffix(".json").read_text())["npu"]
    assert set(npu) == {"SM8650", "SM8550"}
    for soc, s in npu.items():
        assert 0 < s["ops_on_npu"] <= s["ops_total"] and s["partitions"] >= 1
        if s["whole"]:
            assert f"{soc}: compiles whole: {s['ops_total']}/{s['ops_total']} ops in 1 partition" in p.stdout
        else:  # one warning line per op left on the CPU, naming it
            lines = [l for l in p.stdout.splitlines() if l.startswith(f"warning: {soc}: #")]
            assert len(lines) == len(s["cpu_ops"]) and all(c["reason"] and c["fix"] for c in s["cpu_ops"])
            assert [l.split()[3] for l in lines] == [c["op"] for c in s["cpu_ops"]]


def test_placement_warns_with_op_reason_and_fix(tmp_path):
    """A rank-6 pixel shuffle stays on the CPU: each op one warning line with the compiler's reason."""
    from deploy.npu import check_placement, placement_lines
    from tests.deploy.npu_test import _convert, _net
    m = tmp_path / "r6.tflite"
    m.write_bytes(_convert(_net(True), "int8"))
    lines = placement_lines(check_placement(m, ["SM8650"]))
    assert lines[0].startswith("warning: SM8650: 4/7 ops on the NPU in 2 partition(s); 3 op(s) stay on the CPU")
    assert [l.split()[3] for l in lines[1:]] == ["RESHAPE", "TRANSPOSE", "RESHAPE"]
    assert all("Rank 6" in l and "rank-4" in l for l in lines[1:])


def test_evaluate_npu_emulate_beside_cpu(espcn_int8, hr_dir, tmp_path):
    out, _ = espcn_int8
    js = tmp_path / "e.json"
    p = run_tool("evaluate", "--tflite", str(out), "--data", str(hr_dir), "--npu_emulate", "qualcomm:SM8650",
                 "--json", str(js))
    assert p.returncode == 0, p.stderr
    assert "SM8650 NPU" in p.stdout and "mean" in p.stdout
    doc = json.loads(js.read_text())
    for key in ("model", "scale", "dataset", "convention", "mean", "bicubic", "images", "provenance"):
        assert key in doc  # the CPU result's JSON contract is unchanged
    emu = doc["npu_emulated"]
    assert emu["soc"] == "SM8650" and emu["placement"]["ops_total"] > 0
    assert [i["name"] for i in emu["images"]] == [i["name"] for i in doc["images"]] == \
        [d["name"] for d in emu["difference"]["images"]]
    for c, n, d in zip(doc["images"], emu["images"], emu["difference"]["images"]):
        assert abs(n["psnr_y"] - c["psnr_y"]) < 0.5  # int8 on the NPU: its own rounding, same model
        assert d["psnr_y"] == pytest.approx(n["psnr_y"] - c["psnr_y"], abs=2e-4)
    assert abs(emu["difference"]["mean"]["psnr_y"]) < 0.5


def test_library_evaluate_npu_emulate(espcn_int8, hr_dir):
    import deploy
    out, _ = espcn_int8
    r = deploy.evaluate(out, hr_dir, npu_emulate="SM8650")
    assert "SM8650 NPU, emulated" in r.model and len(r.images) == 3
    assert abs(r.mean["psnr_y"] - deploy.evaluate(out, hr_dir).mean["psnr_y"]) < 0.5


@pytest.mark.parametrize("tool,args", [
    ("evaluate", ["--npu_emulate", "qualcomm:SM9999"]),
    ("evaluate", ["--npu_emulate", "mediatek:MT6989"]),
])
def test_bad_npu_target_is_one_line(espcn_int8, hr_dir, tmp_path, tool, args):
    out, _ = espcn_int8
    js = tmp_path / "e.json"
    p = run_tool(tool, "--tflite", str(out), "--data", str(hr_dir), "--json", str(js), *args)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr and not js.exists()


def test_convert_bad_npu_target_writes_nothing(tmp_path, random_weights):
    out = tmp_path / "m.tflite"
    p = run_tool("convert", "--model", "espcn", "--scale", "2", "--weights", str(random_weights("espcn", 2)),
                 "--input_size", "16x16", "--out", str(out), "--npu", "SM1234")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "SM8650" in p.stderr
    assert not out.exists() and not out.with_suffix(".json").exists()
