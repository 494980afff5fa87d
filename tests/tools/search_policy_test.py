"""tools/search_policy.py as a user runs it: bad input is one line; a search feeds convert.py."""
import json

import pytest

from tests.conftest import run_tool


@pytest.mark.parametrize("budget, why", [("abc", "--budget_db must be a number, not str 'abc'"),
                                         ("-0.1", "--budget_db must be a finite number >= 0, not -0.1"),
                                         ("nan", "--budget_db must be a finite number")])
def test_bad_budget_is_one_line(tmp_path, budget, why):
    r = run_tool("search_policy", "--budget_db", budget, "--out", str(tmp_path / "p.json"))
    assert r.returncode == 2 and why in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("args, why", [
    (["--budget_db", "0.1", "--latency_budget_ms", "5"], "are two searches; pass one"),
    (["--latency_budget_ms", "0"], "--latency_budget_ms must be >= 1e-06"),
    (["--latency_budget_ms", "nan"], "--latency_budget_ms must be a finite number"),
    (["--latency_budget_ms", "5", "--sensitivity"], "--latency_budget_ms only applies to a search"),
    (["--numerics", "npu", "--budget_db", "0.1"], "name the NPU with --npu"),
])
def test_dual_and_numerics_flag_conflicts_are_one_line(tmp_path, args, why):
    r = run_tool("search_policy", "--model", "espcn", *args, "--out", str(tmp_path / "p.json"))
    assert r.returncode == 2 and why in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0 and not (tmp_path / "p.json").exists()


def test_latency_budget_below_all_int8_names_the_fastest(tmp_path, hr_dir):
    r = run_tool("search_policy", "--model", "espcn", "--scale", "2", "--input_size", "16x16", "--calib_dir",
                 str(hr_dir), "--calib_images", "2", "--val_dir", str(hr_dir), "--val_images", "2",
                 "--latency_budget_ms", "0.000001", "--out", str(tmp_path / "p.json"))
    assert r.returncode == 2 and "is below the fastest policy, all-a8w8 at" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0 and not (tmp_path / "p.json").exists()


def test_unknown_device_profile_lists_known_ones(tmp_path):
    r = run_tool("search_policy", "--model", "espcn", "--budget_db", "0.1", "--device_profile", "tpu9000",
                 "--out", str(tmp_path / "p.json"))
    assert r.returncode == 2 and "unknown device profile 'tpu9000'" in r.stderr and "htp_npu" in r.stderr
    assert r.stderr.strip().count("\n") == 0


@pytest.mark.slow
def test_search_then_convert_takes_the_policy_unchanged(tmp_path, hr_dir):
    out = tmp_path / "hybrid.json"
    common = ["--model", "espcn", "--scale", "3", "--input_size", "24x24", "--calib_dir", str(hr_dir),
              "--calib_images", "2"]
    r = run_tool("search_policy", *common, "--budget_db", "0.05", "--val_dir", str(hr_dir),
                 "--val_images", "2", "--max_evals", "8", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "searched hybrid" in r.stdout and "wrote" in r.stdout
    record = json.loads((tmp_path / "hybrid.search.json").read_text())
    assert record["feasible"] and record["psnr_y"] >= record["target_psnr_y"]
    r = run_tool("convert", *common, "--policy", str(out), "--out", str(tmp_path / "m.tflite"))
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "m.json").read_text())
    asked = json.loads(out.read_text())["layers"]
    assert {l["layer"]: l["actual"] for l in report["layers"] if l["layer"] in asked} == asked
