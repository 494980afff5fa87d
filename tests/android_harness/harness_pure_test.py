"""Pure pieces: thermal parsing, throttle rule, aliases, devices file, config flags, records."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from android_harness import aliases, errors, results, thermal
from android_harness.config import BenchConfig

BATTERY = ("Current Battery Service state:\n  AC powered: false\n  USB powered: true\n"
           "  level: 87\n  scale: 100\n  voltage: 4213\n  temperature: 315\n"
           "  technology: Li-ion\n")
THERMAL = ("IsStatusOverride: false\nThermalEventListeners:\n\tcallbacks: 1\n"
           "Thermal Status: 2\nCached temperatures:\n")


def test_dumpsys_parsing():
    assert thermal.parse_battery(BATTERY) == 31.5
    assert thermal.parse_thermal_status(THERMAL) == 2
    assert thermal.parse_battery("Can't find service: battery") is None
    assert thermal.parse_thermal_status("") is None


@pytest.mark.parametrize("before,after,want", [
    ((30.0, 0), (31.0, 0), False),
    ((30.0, 0), (30.5, 1), True),      # the OS says throttling (LIGHT)
    ((30.0, 0), (33.5, 0), True),      # heated 3.5 C in one trial
    ((43.0, 0), (43.0, 0), True),      # already hot
    ((None, None), (None, None), False),
])
def test_throttle_rule(before, after, want):
    snap = lambda t: thermal.ThermalSnapshot(*t)  # noqa: E731
    assert thermal.throttled(snap(before), snap(after)) is want


def test_alias_matching_is_anchored_and_case_insensitive():
    info = {"brand": "google", "model": "Pixel 8", "soc": "Tensor G3"}
    assert aliases.matches({"brand": "GOOGLE"}, "x", info)
    assert not aliases.matches({"model": "Pixel"}, "x", info)          # fullmatch, no prefix
    assert aliases.matches({"model": "Pixel.*", "soc": "tensor g3"}, "x", info)
    assert aliases.aliases_for("x", info, aliases.DEFAULT_ALIASES) == ["pixel"]


def test_devices_file_overlays_defaults_and_rejects_typos(tmp_path):
    p = tmp_path / "d.toml"
    p.write_text('[aliases.s23]\nmodel = "SM-S91.*"\n')
    table = aliases.load(p)
    assert table["s23"] == {"model": "SM-S91.*"} and "pixel" in table
    p.write_text('[aliases.bad]\nmodle = "x"\n')
    with pytest.raises(errors.HarnessError, match="modle"):
        aliases.load(p)
    p.write_text("[aliases\n")
    with pytest.raises(errors.HarnessError, match="not valid TOML"):
        aliases.load(p)


def test_flags_per_delegate():
    assert "--use_xnnpack=false" in BenchConfig(delegate="cpu").flags()
    assert "--use_gpu=true" in BenchConfig(delegate="gpu").flags()
    nn = BenchConfig(delegate="nnapi", nnapi_accelerator_name="google-edgetpu").flags()
    assert "--use_nnapi=true" in nn and "--nnapi_accelerator_name=google-edgetpu" in nn
    q = BenchConfig(delegate="qnn", external_delegate_path="/data/local/tmp/q/libQnn.so",
                    external_delegate_options="backend_type:htp;htp_precision:1").flags()
    assert "--external_delegate_options=backend_type:htp;htp_precision:1" in q
    assert "--use_hexagon=true" in BenchConfig(delegate="hexagon").flags()
    with pytest.raises(ValueError, match="external_delegate_path"):
        BenchConfig(delegate="qnn")
    with pytest.raises(ValueError, match="one of"):
        BenchConfig(delegate="tpu")
    assert BenchConfig(num_runs=100).bench_timeout_s() > BenchConfig(num_runs=1).bench_timeout_s()


def test_summary_median_and_spread():
    trials = [{"stats": {"inference_avg_us": v, "init_us": 5.0}, "thermal": {"throttled": t}}
              for v, t in ((100.0, False), (120.0, False), (110.0, True))]
    s = results.summarize(trials)
    assert s["median_inference_us"] == 110.0 and s["trials_ok"] == 3
    assert s["spread_pct"] == pytest.approx(100 * 20 / 110)
    assert s["throttled"] is True


def test_results_file_refuses_clobber_and_skips_torn_lines(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"kind": "trial", "job": "j", "trial": 0, "status": "ok"}\n{"kind": "tr')
    with pytest.raises(errors.HarnessError, match="--resume"):
        results.ResultsFile(p)
    rf = results.ResultsFile(p, resume=True)
    assert [r["trial"] for r in rf.done_trials("j")] == [0]
    results.ResultsFile(p, overwrite=True)
    assert not p.exists()


def test_android_harness_never_imports_deploy_or_models():
    """DESIGN.md: the two sides meet only through the result JSON."""
    pkg = Path(__file__).resolve().parents[2] / "android_harness"
    for py in pkg.glob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("deploy", "models"), (py.name, name)
