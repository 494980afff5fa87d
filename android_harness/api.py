"""The one entry point behind ``tools/adb_bench.py``: list, parse a log, or benchmark.

Why a single function: the CLI stays a thin flag parser, and every failure the user can cause
becomes ONE line on stderr and an exit code (errors.py), never a stack trace.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from android_harness import aliases as aliases_mod
from android_harness import errors, results
from android_harness.config import BenchConfig
from android_harness.device import AdbHost, list_devices
from android_harness.parser import parse
from android_harness.session import BenchRequest, run_benchmarks


@dataclasses.dataclass(frozen=True)
class Options:
    """Everything the CLI flags say, already typed. Per-run settings default to BenchConfig's,
    so each default is stated once."""

    models: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    delegates: tuple[str, ...] = (BenchConfig.delegate,)
    num_threads: int = BenchConfig.num_threads
    num_runs: int = BenchConfig.num_runs
    warmup_runs: int = BenchConfig.warmup_runs
    enable_op_profiling: bool = BenchConfig.enable_op_profiling
    nnapi_accelerator_name: str = BenchConfig.nnapi_accelerator_name
    external_delegate_path: str = BenchConfig.external_delegate_path
    external_delegate_options: str = BenchConfig.external_delegate_options
    trials: int = 3
    cooldown_s: float = 10.0
    results: str = "adb_bench/results.jsonl"
    resume: bool = False
    overwrite: bool = False
    benchmark_binary: str = ""
    devices_file: str = ""
    adb_hosts: tuple[str, ...] = ()
    adb_server_port: int = 0
    desktop_backend: str = "interpreter"
    bench_timeout_s: float = 0.0
    npu_dispatch_dir: str = ""
    list_devices: bool = False
    save_devices: bool = False
    parse_log: str = ""
    json_out: str = ""


def hosts(opts: Options) -> tuple[AdbHost, ...]:
    """--adb_host values, else the local server on --adb_server_port / $ANDROID_ADB_SERVER_PORT.

    A local server is started only on that local port: a named --adb_host with another port
    (a typo, say) that does not answer is an error, never a new adb server on that port."""
    env_port = os.environ.get("ANDROID_ADB_SERVER_PORT") or "5037"
    try:
        port = opts.adb_server_port or int(env_port)
    except ValueError:
        raise errors.AdbUnavailable(f"$ANDROID_ADB_SERVER_PORT={env_port!r} is not a port number") from None
    if opts.adb_hosts:
        named = tuple(AdbHost.parse(h, port) for h in opts.adb_hosts)
        return tuple(dataclasses.replace(h, may_start=h.port == port) for h in named)
    return (AdbHost("127.0.0.1", port),)


def list_table(opts: Options, problems: list[str]) -> str:
    """The --list_devices table; unreachable adb servers go to ``problems`` (one line each)."""
    table = aliases_mod.load(opts.devices_file or None)
    rows = [("HOST", "SERIAL", "STATE", "BRAND", "MODEL", "SOC", "ANDROID", "ALIASES")]
    all_hosts = hosts(opts)
    refs = list_devices(all_hosts, unreachable=problems)
    if len(problems) == len(all_hosts):
        raise errors.AdbUnavailable(problems[0])
    if opts.save_devices:
        path = opts.devices_file or aliases_mod.default_path()
        added = aliases_mod.save_discovered(refs, path)
        table = aliases_mod.load(path)
        problems_note = f"saved aliases {', '.join(added)} to {path}" if added else (
            f"every attached phone already has an alias in {path}")
    for r in refs:
        i = r.info
        rows.append((r.host.label, r.serial, r.state, i.get("brand", ""), i.get("model", ""),
                     i.get("soc", ""), i.get("android_version", ""),
                     ",".join(aliases_mod.aliases_for(r.serial, i, table)) if i else ""))
    if len(rows) == 1:
        return "no phones attached (check the cable, USB debugging, and `adb devices`)"
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    text = "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
    return text + (f"\n{problems_note}" if opts.save_devices else "")


def parse_log_file(path: str, json_out: str, overwrite: bool) -> dict:
    p = Path(path)
    if not p.is_file():
        raise errors.LogParseError(f"log {p} not found")
    stats = parse(p.read_text(errors="replace"))
    if not stats.ok and not stats.ops and not stats.delegations:
        raise errors.LogParseError(f"{p} holds no benchmark_model output (no 'Inference "
                                   "timings', 'count=' or profiling lines)")
    record = results.base_record("parsed_log", raw_log=str(p), stats=stats.to_dict())
    if json_out:
        out = Path(json_out)
        results.check_output(out, (p,), overwrite=overwrite)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:  # whole or not at all; the temp file never outlives an error
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return record


def _coverage(cov: dict | None) -> str:
    if not cov:
        return "-"
    n, m, frac = cov["nodes_delegated"], cov["nodes_total"], cov["fraction"]
    share = "?" if frac is None else f"{100 * frac:.0f}%"
    nodes = f"{n}/{m} nodes" if n is not None and m is not None else "nodes ?"
    return f"{cov['delegate']} {nodes} ({share}), {cov['partitions']} partition(s)"


def _configs(opts: Options) -> tuple[BenchConfig, ...]:
    try:
        return tuple(BenchConfig(delegate=d, num_threads=opts.num_threads,
                                 num_runs=opts.num_runs, warmup_runs=opts.warmup_runs,
                                 enable_op_profiling=opts.enable_op_profiling,
                                 nnapi_accelerator_name=opts.nnapi_accelerator_name,
                                 external_delegate_path=opts.external_delegate_path,
                                 external_delegate_options=opts.external_delegate_options)
                     for d in opts.delegates)
    except ValueError as e:
        raise errors.HarnessError(str(e)) from None


def run(opts: Options, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    """Do what the flags ask; print a table or one-line errors; return the exit code."""
    try:
        if opts.list_devices:
            problems: list[str] = []
            print(list_table(opts, problems), file=stdout)
            for p in problems:
                print(f"adb_bench: {p}", file=stderr)
            return errors.EXIT_PARTIAL if problems else errors.EXIT_OK
        if opts.parse_log:
            rec = parse_log_file(opts.parse_log, opts.json_out, opts.overwrite)
            s = rec["stats"]
            avg = s["inference_avg_us"]
            print(f"{opts.parse_log}: inference avg "
                  f"{'-' if avg is None else f'{avg / 1000:.3f} ms'}, {len(s['ops'])} op rows, "
                  f"coverage {_coverage(s['coverage'])}", file=stdout)
            return errors.EXIT_OK
        req = BenchRequest(
            models=tuple(Path(m) for m in opts.models), configs=_configs(opts),
            results_path=Path(opts.results), devices=opts.devices, hosts=hosts(opts),
            benchmark_binary=Path(opts.benchmark_binary) if opts.benchmark_binary else None,
            devices_file=Path(opts.devices_file) if opts.devices_file else None,
            trials=opts.trials, cooldown_s=opts.cooldown_s, resume=opts.resume,
            overwrite=opts.overwrite, desktop_backend=opts.desktop_backend,
            bench_timeout_s=opts.bench_timeout_s or None,
            npu_dispatch_dir=Path(opts.npu_dispatch_dir) if opts.npu_dispatch_dir else None)
        report = run_benchmarks(req)
    except errors.HarnessError as e:
        print(f"adb_bench: {e}", file=stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"adb_bench: interrupted; finished trials are in {opts.results}, re-run with "
              "--resume", file=stderr)
        return 130
    for n in report.notices:
        print(f"adb_bench: {n}", file=stderr)
    if report.summaries:
        print(results.format_table(list(report.summaries)), file=stdout)
    print(f"results: {opts.results} ({report.trials_run} trial(s) run, "
          f"{report.trials_skipped} resumed)", file=stdout)
    for f in report.failures:
        print(f"adb_bench: {f}", file=stderr)
    return report.exit_code
