"""Injected faults: one clear line each, non-zero exit, measured results stay on disk."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness_env import opts, records, run

from android_harness import errors, results

REPO = Path(__file__).resolve().parents[2]


# End-to-end through real adb servers: never let a protocol bug hang CI.
pytestmark = pytest.mark.timeout(120)

def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("adb_bench:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_unauthorized_phone_is_reported_and_others_continue(tmp_path, server_a, server_b,
                                                            pixel, locked_phone, models,
                                                            bench_binary):
    o = opts(tmp_path, models=(str(models["m16"]),), trials=1,
             devices=(pixel.serial, locked_phone.serial), benchmark_binary=str(bench_binary),
             adb_hosts=(server_a.host.label, server_b.host.label))
    code, out, err = run(o)
    assert code == errors.EXIT_PARTIAL
    line = one_line(err)
    assert locked_phone.serial in line and "unauthorized" in line
    assert "Allow USB debugging" in line
    assert [s["device"]["serial"] for s in records(o, "summary")] == [pixel.serial]


def test_phone_dropping_mid_run_keeps_measured_trials(tmp_path, server_a, pixel, spare_phone,
                                                      models, bench_binary):
    spare_phone.faults.drop_on_bench_call = spare_phone.faults.bench_calls + 2
    o = opts(tmp_path, models=(str(models["m16"]),), trials=3,
             devices=(spare_phone.serial, pixel.serial), benchmark_binary=str(bench_binary),
             adb_server_port=server_a.port)
    code, _, err = run(o)
    assert code == errors.EXIT_PARTIAL
    line = one_line(err)
    assert spare_phone.serial in line and ("offline" in line or "absent" in line)
    assert "--resume" in line or "adb reconnect" in line
    trials = records(o, "trial")
    lost = [t for t in trials if t["device"]["serial"] == spare_phone.serial]
    assert [t["trial"] for t in lost] == [0]        # trial 1 was measured before the drop
    assert len([t for t in trials if t["device"]["serial"] == pixel.serial]) == 3
    partial = [s for s in records(o, "summary") if s["device"]["serial"] == spare_phone.serial]
    assert partial[0]["complete"] is False and partial[0]["trials_ok"] == 1


def test_refused_push_is_one_line(tmp_path, server_a, spare_phone, models, bench_binary):
    spare_phone.faults.refuse_push = True
    o = opts(tmp_path, models=(str(models["m32"]),), devices=(spare_phone.serial,),
             benchmark_binary=str(bench_binary), adb_server_port=server_a.port)
    code, _, err = run(o)
    assert code == errors.EXIT_ALL_FAILED
    line = one_line(err)
    assert "refused" in line and "No space left on device" in line


@pytest.mark.slow
def test_hung_benchmark_times_out(tmp_path, server_a, spare_phone, models, bench_binary):
    spare_phone.faults.hang_pattern = "--graph="
    o = opts(tmp_path, models=(str(models["m16"]),), devices=(spare_phone.serial,), trials=1,
             benchmark_binary=str(bench_binary), adb_server_port=server_a.port,
             bench_timeout_s=2.0)
    code, _, err = run(o)
    assert code == errors.EXIT_ALL_FAILED
    line = one_line(err)
    assert "no answer within 2s" in line
    assert not records(o, "trial")
    assert "no answer within 2s" in records(o, "error")[0]["message"]


def test_missing_benchmark_binary_says_where_to_get_it(tmp_path, server_a, pixel, models,
                                                       monkeypatch):
    monkeypatch.delenv("SRDEPLOY_BENCHMARK_MODEL", raising=False)
    o = opts(tmp_path, models=(str(models["m16"]),), devices=(pixel.serial,),
             adb_server_port=server_a.port)
    code, _, err = run(o)
    assert code == errors.EXIT_BAD_INPUT
    line = one_line(err)
    assert "--benchmark_binary" in line and "https://" in line and "never fetched" in line
    o2 = opts(tmp_path, models=(str(models["m16"]),), devices=(pixel.serial,),
              adb_server_port=server_a.port, benchmark_binary=str(tmp_path / "nope"))
    assert "not found" in one_line(run(o2)[2])


@pytest.mark.parametrize("name,expect", [("garbage", "not a TFLite flatbuffer"),
                                         ("missing", "not found")])
def test_bad_model_fails_before_touching_a_phone(tmp_path, models, name, expect):
    path = models.get(name, tmp_path / "missing.tflite")
    code, _, err = run(opts(tmp_path, models=(str(path),), devices=("desktop",)))
    assert code == errors.EXIT_BAD_INPUT and expect in one_line(err)


def test_model_the_phone_cannot_load_fails_alone(tmp_path, server_a, pixel, models,
                                                 bench_binary):
    o = opts(tmp_path, models=(str(models["corrupt"]), str(models["m16"])), trials=1,
             devices=(pixel.serial,), benchmark_binary=str(bench_binary),
             adb_server_port=server_a.port)
    code, _, err = run(o)
    assert code == errors.EXIT_PARTIAL
    line = one_line(err)
    assert "corrupt.tflite" in line and "exit 1" in line and "log:" in line
    assert [t["model"]["name"] for t in records(o, "trial")] == ["espcn_x2_16.tflite"]
    assert records(o, "error")[0]["model"]["name"] == "corrupt.tflite"


@pytest.mark.slow
def test_cli_prints_one_line_and_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "tools" / "adb_bench.py"),
                        f"--model={tmp_path / 'nope.tflite'}", "--device=desktop",
                        f"--results={tmp_path / 'r.jsonl'}"],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == errors.EXIT_BAD_INPUT
    assert r.stderr.strip().splitlines() == [
        f"adb_bench: model {tmp_path / 'nope.tflite'} not found: check the path "
        "(convert one with tools/convert.py)"]


@pytest.mark.slow
def test_ctrl_c_keeps_finished_trials_and_says_resume(tmp_path, server_a, pixel, models,
                                                      bench_binary):
    res = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tools" / "adb_bench.py"), f"--model={models['m16']}",
         f"--device={pixel.serial}", f"--adb_server_port={server_a.port}", "--trials=5",
         "--cooldown_s=3", "--num_runs=3", "--warmup_runs=1", f"--results={res}",
         f"--benchmark_binary={bench_binary}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        # a shell's background job (`cmd &`, nohup) starts with SIGINT ignored, and Python then
        # never installs its Ctrl-C handler: give the child the default, as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not (res.exists() and '"trial"' in res.read_text()):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # during the cool-down after trial 1
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("adb_bench: interrupted") and "--resume" in err
    assert "Traceback" not in err
    trials = [r for r in results.read_records(res) if r["kind"] == "trial"]
    assert 1 <= len(trials) < 5
