"""End to end: the harness drives real adb servers, which drive the ADB device doubles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from adb_double import BENCH_RUNNING
from harness_env import FIXTURE_LOGS, AdbServer, free_port, opts, records, run

from android_harness import api, errors, results
from android_harness.device import list_devices
from android_harness.runner import AndroidRunner, load_model

# End-to-end through real adb servers: never let a protocol bug hang CI.
pytestmark = pytest.mark.timeout(120)

def test_full_run_on_a_phone_is_parsed_into_the_schema(tmp_path, server_a, pixel, models,
                                                        bench_binary, devices_file):
    o = opts(tmp_path, models=(str(models["m16"]),), devices=("pixel",), delegates=("cpu",),
             enable_op_profiling=True, benchmark_binary=str(bench_binary),
             devices_file=str(devices_file), adb_server_port=server_a.port)
    code, out, err = run(o)
    assert code == 0, err
    assert "pixel" in out and "espcn_x2_16.tflite" in out and "MEDIAN ms" in out
    trials, summary = records(o, "trial"), records(o, "summary")
    assert [t["trial"] for t in trials] == [0, 1] and len(summary) == 1
    t = trials[0]
    assert t["schema_version"] == results.SCHEMA_VERSION == 1
    assert t["backend"] == "android-benchmark_model"
    dev = t["device"]
    assert (dev["serial"], dev["label"], dev["soc"], dev["android_version"]) == (
        pixel.serial, "pixel", "Tensor G3", "14")
    assert t["model"]["sha256"] == load_model(models["m16"]).sha256
    assert t["config"]["delegate"] == "cpu" and t["config"]["num_runs"] == 3
    assert "--use_xnnpack=false" in t["command"] and "--num_runs=3" in t["command"]
    s = t["stats"]
    assert s["inference_avg_us"] > 0 and s["inference"]["count"] == 3
    assert s["init_us"] > 0 and s["memory_peak_mb"] == pytest.approx(41.8711)
    # Per-op rows map back to the .tflite: node index + output tensor names.
    from ai_edge_litert import interpreter as litert
    it = litert.Interpreter(model_path=str(models["m16"]), experimental_op_resolver_type=
                            litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    names = {d["index"]: d["name"] for d in it.get_tensor_details()}
    want = [(o["index"], o["op_name"], names[o["outputs"][0]]) for o in it._get_ops_details()]
    assert [(op["node_index"], op["op_type"], op["outputs"][0]) for op in s["ops"]] == want
    assert {r["op_type"] for r in s["ops_by_type"]} == {"CONV_2D", "DEPTH_TO_SPACE"}
    assert t["thermal"]["before"] == {"battery_temp_c": 28.5, "thermal_status": 0}
    assert t["thermal"]["throttled"] is False
    log = Path(t["raw_log"]).read_text()
    assert "Inference timings in us" in log
    sm = summary[0]
    assert sm["trials_ok"] == 2 and sm["complete"] is True
    assert sm["median_inference_us"] == pytest.approx(
        sorted(x["stats"]["inference_avg_us"] for x in trials)[0] / 2
        + sorted(x["stats"]["inference_avg_us"] for x in trials)[1] / 2)


def test_xnnpack_coverage_reaches_the_record(tmp_path, server_a, pixel, models, bench_binary):
    o = opts(tmp_path, models=(str(models["m16"]),), devices=(pixel.serial,), trials=1,
             delegates=("xnnpack",), benchmark_binary=str(bench_binary),
             adb_server_port=server_a.port)
    assert run(o)[0] == 0
    cov = records(o, "trial")[0]["stats"]["coverage"]
    assert (cov["delegate"], cov["nodes_delegated"], cov["nodes_total"], cov["fraction"]) == (
        "TfLiteXNNPackDelegate", 3, 3, 1.0)


def test_push_skips_files_whose_checksum_matches(server_a, spare_phone, models, bench_binary):
    ref = next(r for r in list_devices([server_a.host]) if r.serial == spare_phone.serial)
    runner = AndroidRunner(ref, bench_binary, [])
    m16, m32 = load_model(models["m16"]), load_model(models["m32"])
    assert runner.prepare([m16]) == {"pushed": 2, "skipped": 0}
    assert runner.prepare([m16]) == {"pushed": 0, "skipped": 2}
    assert runner.prepare([m16, m32]) == {"pushed": 1, "skipped": 2}
    on_phone = spare_phone.device_path(runner.remote_model(m32))
    assert on_phone.read_bytes() == models["m32"].read_bytes()
    on_phone.write_bytes(b"stale")  # a changed file on the phone is pushed again
    assert runner.prepare([m32]) == {"pushed": 1, "skipped": 1}
    assert spare_phone.device_path(runner.remote_bin).stat().st_mode & 0o111


def test_model_path_with_spaces_and_semicolon_cannot_inject(tmp_path, server_a, pixel, models,
                                                           bench_binary):
    o = opts(tmp_path, models=(str(models["evil"]),), devices=(pixel.serial,), trials=1,
             benchmark_binary=str(bench_binary), adb_server_port=server_a.port)
    code, _, err = run(o)
    assert code == 0, err
    assert not list(pixel.root.rglob("INJECTED")) and not list(Path.cwd().glob("INJECTED"))
    remote = list((pixel.data_dir / "srdeploy" / "models").glob("*sr net; touch INJECTED*"))
    assert len(remote) == 1
    assert records(o, "trial")[0]["stats"]["inference_avg_us"] > 0


def test_two_phones_on_two_adb_hosts_run_in_parallel(tmp_path, server_a, server_b, pixel,
                                                     galaxy, models, bench_binary,
                                                     devices_file):
    o = opts(tmp_path, models=(str(models["m16"]),), devices=("pixel", "s23"), trials=1,
             benchmark_binary=str(bench_binary), devices_file=str(devices_file),
             adb_hosts=(server_a.host.label, server_b.host.label))
    BENCH_RUNNING["max"] = 0
    pixel.faults.rendezvous = galaxy.faults.rendezvous = 2  # each run waits for the other
    try:
        code, out, err = run(o)
    finally:
        pixel.faults.rendezvous = galaxy.faults.rendezvous = 0
    assert code == 0, err
    assert BENCH_RUNNING["max"] == 2  # sequential workers would never overlap
    by_dev = {s["device"]["serial"]: s for s in records(o, "summary")}
    assert set(by_dev) == {pixel.serial, galaxy.serial}
    assert by_dev[galaxy.serial]["device"]["host"] == server_b.host.label
    assert by_dev[galaxy.serial]["device"]["soc"] == "SM8550"
    assert "pixel" in out and "s23" in out


def test_resume_skips_trials_already_on_disk(tmp_path, server_a, spare_phone, models,
                                             bench_binary):
    kw = dict(models=(str(models["m16"]),), devices=(spare_phone.serial,),
              benchmark_binary=str(bench_binary), adb_server_port=server_a.port)
    o = opts(tmp_path, trials=2, **kw)
    assert run(o)[0] == 0
    calls = spare_phone.faults.bench_calls
    code, _, err = run(opts(tmp_path, trials=3, **kw))
    assert code == errors.EXIT_BAD_INPUT and "--resume" in err  # never clobbered silently
    code, out, _ = run(opts(tmp_path, trials=3, resume=True, **kw))
    assert code == 0 and "1 trial(s) run, 2 resumed" in out
    assert spare_phone.faults.bench_calls == calls + 1
    assert sorted(t["trial"] for t in records(o, "trial")) == [0, 1, 2]
    assert records(o, "summary")[-1]["trials_ok"] == 3


def test_throttling_is_recorded(tmp_path, server_a, spare_phone, models, bench_binary):
    spare_phone.set_thermal(battery_temp_c=44.0, thermal_status=2)
    o = opts(tmp_path, models=(str(models["m16"]),), devices=(spare_phone.serial,), trials=1,
             benchmark_binary=str(bench_binary), adb_server_port=server_a.port)
    code, out, _ = run(o)
    assert code == 0
    t = records(o, "trial")[0]
    assert t["thermal"]["after"] == {"battery_temp_c": 44.0, "thermal_status": 2}
    assert t["thermal"]["throttled"] is True and records(o, "summary")[0]["throttled"] is True
    assert out.splitlines()[1].rstrip().endswith("yes")


def test_desktop_fallback_writes_the_same_schema(tmp_path, server_a, pixel, models,
                                                 bench_binary):
    phone = opts(tmp_path / "p", models=(str(models["m16"]),), devices=(pixel.serial,),
                 trials=1, enable_op_profiling=True, delegates=("cpu",),
                 benchmark_binary=str(bench_binary), adb_server_port=server_a.port)
    desk = opts(tmp_path / "d", models=(str(models["m16"]),), devices=("desktop",), trials=2,
                enable_op_profiling=True, delegates=("cpu",))
    assert run(phone)[0] == 0 and run(desk)[0] == 0
    p, d = records(phone, "trial")[0], records(desk, "trial")[0]
    assert set(p) == set(d) and set(p["stats"]) == set(d["stats"])
    assert d["backend"] == "desktop-litert-interpreter" and d["device"]["serial"] == "desktop"
    assert d["stats"]["inference_avg_us"] > 0 and d["stats"]["inference"]["count"] == 3
    assert [(o["node_index"], o["op_type"], o["outputs"]) for o in d["stats"]["ops"]] == [
        (o["node_index"], o["op_type"], o["outputs"]) for o in p["stats"]["ops"]]
    assert records(desk, "summary")[0]["trials_ok"] == 2


@pytest.mark.slow
def test_no_phone_attached_falls_back_to_desktop_with_a_notice(tmp_path, _adb_env, models):
    empty = AdbServer(_adb_env)
    try:
        o = opts(tmp_path, models=(str(models["m16"]),), trials=1,
                 adb_server_port=empty.port, desktop_backend="litert-benchmark")
        code, out, err = run(o)
    finally:
        empty.kill()
    assert code == 0, err
    assert "no phone attached" in err and "desktop" in out
    t = records(o, "trial")[0]
    assert t["backend"] == "desktop-litert-benchmark" and t["stats"]["inference_avg_us"] > 0


def test_parse_log_writes_json_without_a_device(tmp_path):
    log = FIXTURE_LOGS / "discuss27507_delegate_coverage.log"
    out_json = tmp_path / "parsed.json"
    code, out, _ = run(api.Options(parse_log=str(log), json_out=str(out_json)))
    assert code == 0 and "TfLiteGpuDelegateV2" in out
    rec = json.loads(out_json.read_text())
    assert rec["schema_version"] == 1 and rec["kind"] == "parsed_log"
    assert rec["stats"]["coverage"]["nodes_total"] == 65
    code, _, err = run(api.Options(parse_log=str(log), json_out=str(out_json)))
    assert code == errors.EXIT_BAD_INPUT and "--overwrite" in err
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    code, _, err = run(api.Options(parse_log=str(empty)))
    assert code == errors.EXIT_BAD_INPUT and len(err.strip().splitlines()) == 1


def test_without_device_flag_every_authorized_phone_runs(tmp_path, server_b, galaxy,
                                                         locked_phone, models, bench_binary):
    o = opts(tmp_path, models=(str(models["m16"]),), trials=1,
             benchmark_binary=str(bench_binary), adb_hosts=(server_b.host.label,))
    code, out, err = run(o)
    assert code == 0, err
    assert [s["device"]["serial"] for s in records(o, "summary")] == [galaxy.serial]
    assert f"skipping device {locked_phone.serial} is unauthorized" in err
    assert "galaxy" in out and "1/1" in out


def test_phone_without_sha256sum_pushes_and_checks_sizes(server_a, spare_phone, models,
                                                         bench_binary):
    spare_phone.faults.no_sha256sum = True
    ref = next(r for r in list_devices([server_a.host]) if r.serial == spare_phone.serial)
    runner = AndroidRunner(ref, bench_binary, [])
    m16 = load_model(models["m16"])
    assert runner.prepare([m16]) == {"pushed": 2, "skipped": 0}
    assert runner.prepare([m16]) == {"pushed": 2, "skipped": 0}  # cannot prove unchanged
    assert spare_phone.device_path(runner.remote_model(m16)).read_bytes() == (
        models["m16"].read_bytes())


def test_no_adb_at_all_falls_back_to_desktop_only_when_no_device_was_asked(tmp_path, models):
    dead = f"127.0.0.2:{free_port()}"
    o = opts(tmp_path, models=(str(models["m16"]),), trials=1, adb_hosts=(dead,))
    code, out, err = run(o)
    assert code == 0 and "unreachable" in err and "desktop fallback" in err
    assert records(o, "trial")[0]["backend"] == "desktop-litert-interpreter"
    code, _, err = run(opts(tmp_path / "2", models=(str(models["m16"]),), devices=("pixel",),
                            adb_hosts=(dead,)))
    assert code == errors.EXIT_BAD_INPUT and "unreachable" in err


def test_delegate_options_with_semicolons_reach_the_tool_as_one_argument(
        tmp_path, server_a, pixel, models, bench_binary):
    evil_opts = "backend_type:htp;touch /data/local/tmp/QNN_INJECTED;htp_precision:1"
    o = opts(tmp_path, models=(str(models["m16"]),), devices=(pixel.serial,), trials=1,
             delegates=("qnn",), external_delegate_path="/data/local/tmp/qnn/libQnnDelegate.so",
             external_delegate_options=evil_opts, benchmark_binary=str(bench_binary),
             adb_server_port=server_a.port)
    code, _, err = run(o)
    assert code == 0, err
    assert not list(pixel.root.rglob("QNN_INJECTED"))
    cmd = records(o, "trial")[0]["command"]
    assert cmd.startswith("env LD_LIBRARY_PATH=/data/local/tmp/qnn ")
    assert f"'--external_delegate_options={evil_opts}'" in cmd


def test_named_device_with_no_phone_attached_is_one_line_never_the_desktop(tmp_path, _adb_env, models,
                                                                          bench_binary):
    """`adb_bench.py --device pixel` with no phone attached (issue 19): exit 2 and one line that
    names --device desktop; the desktop never silently answers an explicit phone request."""
    empty = AdbServer(_adb_env)
    try:
        o = opts(tmp_path, models=(str(models["m16"]),), devices=("pixel",), trials=1,
                 adb_server_port=empty.port, benchmark_binary=str(bench_binary))
        code, out, err = run(o)
    finally:
        empty.kill()
    assert code == errors.EXIT_BAD_INPUT, err
    assert err.count("adb_bench:") == 1 and "Traceback" not in err
    assert "no phone attached for --device pixel" in err and "--device desktop" in err
    assert not Path(o.results).exists()
