"""Benchmark .tflite models on Android phones over adb (desktop fallback without a phone).

  python tools/adb_bench.py --device=pixel        # the shipped XLSR x3 int8 model by default
  python tools/adb_bench.py --model=m.tflite --device=pixel --delegate=gpu
  python tools/adb_bench.py --list_devices
  python tools/adb_bench.py --parse_log=run.log --json=run.json
See docs/HARNESS.md for the result schema and the phone set-up guide.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import flags

from android_harness import api
from deploy.commands import flag_checks

F = flags.FLAGS
flags.DEFINE_multi_string("model", [], "a .tflite file (repeatable; default: the shipped XLSR x3 "
                          "converted to int8, cached as adb_bench/xlsr_x3_int8.tflite)")
flags.DEFINE_multi_string("device", [], "serial, HOST:PORT/serial, alias (devices file) or "
                          "'desktop'; repeatable, one worker per phone; default: all attached")
flags.DEFINE_multi_enum("delegate", ["xnnpack"], ["cpu", "xnnpack", "gpu", "nnapi", "hexagon",
                        "qnn", "npu"], "delegate(s), one at a time; npu: a model compiled by "
                        "tools/npu_compile.py, run by LiteRT's benchmark_model with its NPU "
                        "dispatch (needs --npu_dispatch_dir)")
flags.DEFINE_integer("num_threads", 4, "CPU threads")
flags.DEFINE_integer("num_runs", 50, "timed inferences per trial")
flags.DEFINE_integer("warmup_runs", 5, "warm-up inferences per trial")
flags.DEFINE_bool("enable_op_profiling", False, "per-op profile (op type and node tables)")
flags.DEFINE_string("nnapi_accelerator_name", "", "NNAPI device, e.g. google-edgetpu")
flags.DEFINE_string("external_delegate_path", "", "phone path of e.g. libQnnTFLiteDelegate.so")
flags.DEFINE_string("external_delegate_options", "", "k:v;k2:v2 options for the delegate")
flags.DEFINE_string("npu_dispatch_dir", "", "--delegate npu: folder with "
                    "libLiteRtDispatch_Qualcomm.so and the phone's QNN HTP libraries (or "
                    "$SRDEPLOY_NPU_DISPATCH_DIR); pushed to /data/local/tmp/srdeploy/npu")
flags.DEFINE_integer("trials", 3, "independent benchmark_model runs per job")
flags.DEFINE_float("cooldown_s", 10.0, "pause between trials so the phone cools down")
flags.DEFINE_string("results", "adb_bench/results.jsonl", "JSON-lines results file")
flags.DEFINE_bool("resume", False, "continue an existing results file, skipping done trials")
flags.DEFINE_bool("overwrite", False, "replace an existing results / --json file")
flags.DEFINE_string("benchmark_binary", "", "Android benchmark_model (or "
                    "$SRDEPLOY_BENCHMARK_MODEL)")
flags.DEFINE_string("devices_file", "", "aliases TOML (default ~/.config/srdeploy/devices.toml)")
flags.DEFINE_multi_string("adb_host", [], "adb server HOST[:PORT] to drive (repeatable)")
flags.DEFINE_integer("adb_server_port", 0, "local adb server port (default "
                     "$ANDROID_ADB_SERVER_PORT or 5037)")
flags.DEFINE_enum("desktop_backend", "interpreter", ["interpreter", "litert-benchmark"],
                  "desktop fallback engine")
flags.DEFINE_float("bench_timeout_s", 0.0, "limit for one benchmark_model run (0: 120 s + "
                   "5 s per inference)")
flags.DEFINE_bool("list_devices", False, "list attached phones, their state and aliases")
flags.DEFINE_bool("save_devices", False, "with --list_devices: add a serial-pinned alias "
                  "(recording SoC, Android version) for each phone not in the devices file")
flags.DEFINE_string("parse_log", "", "parse a saved benchmark_model log (no device)")
flags.DEFINE_string("json", "", "with --parse_log: write the parsed record here")
flag_checks.positive("num_threads", "num_runs", "trials")
flag_checks.at_least("warmup_runs", 0)
flag_checks.at_least("cooldown_s", 0, " seconds")
flag_checks.at_least("bench_timeout_s", 0, " seconds (0: automatic)")


def _hosts_ok(hosts: list[str]) -> bool:
    """--adb_host values parse (HOST or HOST:PORT): checked with the flags, not after converting
    the default model."""
    from android_harness.device import AdbHost
    from android_harness.errors import HarnessError
    try:
        for h in hosts or ():
            AdbHost.parse(h)
    except HarnessError:
        return False
    return True


flags.register_validator("adb_host", _hosts_ok, message="--adb_host must be HOST or HOST:PORT (port 1..65535)")
flags.register_validator("adb_server_port", lambda v: v == 0 or 1 <= v <= 65535,
                         message="--adb_server_port must be a TCP port (1..65535), or 0 for the default")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print(f"adb_bench: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    from deploy._files import check_writable
    from deploy.commands.cli import run_cli
    for out, used in ((F.results, not (F.list_devices or F.parse_log)), (F.json, bool(F.json))):
        if used:  # an unwritable folder is said now, not after the trials
            run_cli(lambda: check_writable(Path(out).parent))
    models = tuple(F.model)
    if not models and not (F.list_devices or F.parse_log):
        from deploy.commands.cli import run_cli
        from deploy.commands.jobs import default_benchmark_model
        models = (run_cli(default_benchmark_model),)
    opts = api.Options(
        models=models, devices=tuple(F.device), delegates=tuple(F.delegate),
        num_threads=F.num_threads, num_runs=F.num_runs, warmup_runs=F.warmup_runs,
        enable_op_profiling=F.enable_op_profiling,
        nnapi_accelerator_name=F.nnapi_accelerator_name,
        external_delegate_path=F.external_delegate_path,
        external_delegate_options=F.external_delegate_options, trials=F.trials,
        cooldown_s=F.cooldown_s, results=F.results, resume=F.resume, overwrite=F.overwrite,
        benchmark_binary=F.benchmark_binary, devices_file=F.devices_file,
        adb_hosts=tuple(F.adb_host), adb_server_port=F.adb_server_port,
        desktop_backend=F.desktop_backend, bench_timeout_s=F.bench_timeout_s,
        npu_dispatch_dir=F.npu_dispatch_dir,
        list_devices=F.list_devices, save_devices=F.save_devices,
        parse_log=F.parse_log, json_out=F.json)
    return api.run(opts)


if __name__ == "__main__":
    flag_checks.main(main)
