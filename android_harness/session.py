"""One benchmark session: pick targets, one worker per phone, trials, records, summaries.

Why here and not in the CLI: tests and bench/harness_overhead.py drive the same function the
command line does. A phone failing is reported in one line and the others keep going.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from absl import logging

from android_harness import aliases as aliases_mod
from android_harness import errors, npu, results, thermal
from android_harness.config import BenchConfig
from android_harness.desktop import DesktopRunner
from android_harness.device import AdbHost, list_devices
from android_harness.parser import parse
from android_harness.runner import AndroidRunner, ModelFile, Runner, load_model

BINARY_ENV = "SRDEPLOY_BENCHMARK_MODEL"
BINARY_HELP = ("no benchmark_model binary: pass --benchmark_binary=PATH or set "
               f"${BINARY_ENV}; download android_aarch64_benchmark_model from "
               "https://ai.google.dev/edge/litert/models/measurement (never fetched at run time)"
               ", or use --device=desktop")


@dataclasses.dataclass(frozen=True)
class BenchRequest:
    models: tuple[Path, ...]
    configs: tuple[BenchConfig, ...]
    results_path: Path
    devices: tuple[str, ...] = ()
    hosts: tuple[AdbHost, ...] = (AdbHost(),)
    benchmark_binary: Path | None = None
    devices_file: Path | None = None
    trials: int = 3
    cooldown_s: float = 10.0
    resume: bool = False
    overwrite: bool = False
    desktop_backend: str = "interpreter"
    bench_timeout_s: float | None = None   # None: config.bench_timeout_s() (grows with runs)
    npu_dispatch_dir: Path | None = None   # --delegate npu: LiteRT dispatch + QNN libs (npu.py)


@dataclasses.dataclass(frozen=True)
class BenchReport:
    summaries: tuple[dict[str, Any], ...]
    failures: tuple[str, ...]
    notices: tuple[str, ...]
    trials_run: int
    trials_skipped: int

    @property
    def exit_code(self) -> int:
        if not self.failures:
            return errors.EXIT_OK
        measured = self.summaries or self.trials_run
        return errors.EXIT_PARTIAL if measured else errors.EXIT_ALL_FAILED


def resolve_binary(flag: Path | None) -> Path:
    path = flag or (Path(os.environ[BINARY_ENV]) if os.environ.get(BINARY_ENV) else None)
    if path is None:
        raise errors.BinaryMissing(BINARY_HELP)
    if not path.is_file():
        raise errors.BinaryMissing(f"benchmark_model binary {path} not found; " + BINARY_HELP)
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"\x7fELF" and not head.startswith(b"#!"):
        raise errors.BinaryMissing(f"benchmark_model binary {path} is not an executable program (no ELF "
                                   "header); " + BINARY_HELP)
    return path


def _targets(req: BenchRequest, notices: list[str], failures: list[str],
             npu_libs: tuple[Path, ...] = ()) -> list[Runner]:
    wanted = [d for d in req.devices if d != "desktop"]
    if "desktop" in req.devices and not wanted:
        return [DesktopRunner(req.desktop_backend)]
    table = aliases_mod.load(req.devices_file)
    unreachable: list[str] = []
    refs = list_devices(req.hosts, with_props=True, unreachable=unreachable)
    if len(unreachable) == len(req.hosts):  # not one adb server answered
        if req.devices:
            raise errors.AdbUnavailable(unreachable[0])
        notices.append(f"{unreachable[0]}; running the desktop fallback")
        return [DesktopRunner(req.desktop_backend)]
    failures.extend(unreachable)  # the other machines of the lab still run
    binary = resolve_binary(req.benchmark_binary) if wanted else None  # asked for a phone: fail now
    if not wanted:
        ready = [r for r in refs if r.state == "device"]
        if not ready:
            notices.append("no phone attached (adb devices is empty or none is authorized): "
                           "running the desktop fallback; pass --device to insist on a phone")
            return [DesktopRunner(req.desktop_backend)]
        chosen = ready
        for r in refs:
            if r.state != "device":
                notices.append(f"skipping {errors.DeviceUnavailable(r.serial, r.state)}")
    elif not refs:  # asked for a phone: never answered by the desktop
        raise errors.DeviceNotFound(
            f"no phone attached for --device {', '.join(wanted)} (adb devices is empty on "
            f"{', '.join(h.label for h in req.hosts)}): attach and authorize it, or pass "
            "--device desktop to measure this machine")
    else:
        chosen = aliases_mod.resolve(wanted, refs, table)
    binary = binary or resolve_binary(req.benchmark_binary)
    runners: list[Runner] = [DesktopRunner(req.desktop_backend)] if "desktop" in req.devices else []
    for ref in chosen:
        if ref.state != "device":
            failures.append(str(errors.DeviceUnavailable(ref.serial, ref.state)))
            continue
        runners.append(AndroidRunner(ref, binary,
                                     aliases_mod.aliases_for(ref.serial, ref.info, table),
                                     npu_libs=npu_libs))
    return runners


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


class _Worker:
    """Everything one phone does, in its own thread."""

    def __init__(self, req: BenchRequest, runner: Runner, models: list[ModelFile],
                 out: results.ResultsFile, stop: threading.Event) -> None:
        self.req, self.runner, self.models, self.out = req, runner, models, out
        self.stop = stop
        self.summaries: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.ran = self.skipped = 0

    def __call__(self) -> "_Worker":
        ref = getattr(self.runner, "ref", None)
        label = ref.serial if ref is not None else "desktop"
        try:
            device = self.runner.describe()
            label = device["label"]
            counts = self.runner.prepare(self.models)
            logging.info("[%s] ready: pushed %d file(s), %d unchanged", label,
                         counts["pushed"], counts["skipped"])
            for model in self.models:
                for cfg in self.req.configs:
                    try:
                        self._job(device, model, cfg)
                    except errors.BenchmarkFailed as e:
                        self.failures.append(f"[{label}] {e}")
        except errors.HarnessError as e:
            self.failures.append(f"[{label}] {e}")
        return self

    def _job(self, device: dict, model: ModelFile, cfg: BenchConfig) -> None:
        backend = self.runner.backend
        job = results.job_key(device["serial"], model.sha256, cfg.to_dict(), backend)
        common = {"job": job, "device": device, "model": model.to_dict(),
                  "config": cfg.to_dict(), "backend": backend}
        done = self.out.done_trials(job)
        done_idx = {r["trial"] for r in done}
        trials = list(done)
        log_dir = self.req.results_path.parent / "logs" / _slug(device["serial"])
        try:
            self._trials(device, model, cfg, common, done_idx, trials, log_dir)
        finally:  # a phone lost mid-job still gets a (partial) summary of what it measured
            if trials:
                summary = results.base_record(
                    "summary", **common, complete=len(trials) >= self.req.trials,
                    trials=self.req.trials,
                    **results.summarize(trials))
                self.out.append(summary)
                self.summaries.append(summary)

    def _trials(self, device: dict, model: ModelFile, cfg: BenchConfig, common: dict,
                done_idx: set, trials: list, log_dir: Path) -> None:
        job = common["job"]
        for i in range(self.req.trials):
            if i in done_idx:
                self.skipped += 1
                continue
            if self.stop.is_set():
                raise errors.HarnessError("interrupted; finished trials are saved, re-run "
                                          "with --resume")
            if self.ran and self.req.cooldown_s > 0:
                time.sleep(self.req.cooldown_s)
            try:
                before = self.runner.thermal()
                out = self.runner.run_trial(model, cfg, self.req.bench_timeout_s)
                after = self.runner.thermal()
            except errors.HarnessError as e:  # lost phone / timeout: on disk too, then up
                self.out.append(results.base_record("error", **common, trial=i,
                                                    message=str(e)))
                raise
            log_dir.mkdir(parents=True, exist_ok=True)
            log_path = log_dir / f"{_slug(model.name)}-{cfg.delegate}-{job[:8]}-t{i}.log"
            log_path.write_text(out.log)
            stats = out.stats or parse(out.log)
            if out.returncode != 0 or not stats.ok:
                errs = [e for e in stats.errors if "Benchmarking failed" not in e]
                why = (errs or out.log.strip().splitlines() or ["no output"])[-1]
                self.out.append(results.base_record("error", **common, trial=i,
                                                    raw_log=str(log_path), message=why))
                raise errors.BenchmarkFailed(
                    f"benchmark_model failed on {model.name} (exit {out.returncode}): {why} "
                    f"(log: {log_path})", out.returncode, out.log)
            rec = results.base_record(
                "trial", **common, trial=i, trials=self.req.trials, status="ok",
                command=out.command, raw_log=str(log_path), stats=stats.to_dict(),
                thermal={"before": dataclasses.asdict(before),
                         "after": dataclasses.asdict(after),
                         "throttled": thermal.throttled(before, after)})
            self.out.append(rec)
            trials.append(rec)
            self.ran += 1
            logging.info("[%s] %s %s trial %d/%d: %.3f ms", device["label"], model.name,
                         cfg.delegate, i + 1, self.req.trials,
                         stats.inference_avg_us / 1000.0)


def run_benchmarks(req: BenchRequest) -> BenchReport:
    """Benchmark every model x config on every target; never loses a finished trial."""
    models = [load_model(m) for m in req.models]
    if not models:
        raise errors.ModelInvalid("no model given: pass --model=path/to/model.tflite")
    npu.check_jobs(models, req.configs)
    wants_npu = any(c.delegate == "npu" for c in req.configs)
    if wants_npu and req.devices and all(d == "desktop" for d in req.devices):
        raise errors.NpuSetupError("--device desktop cannot run a model compiled for a phone NPU "
                                   "(DISPATCH_OP nodes need LiteRT's NPU dispatch on the phone): "
                                   "benchmark the model it was compiled from on the desktop")
    npu_libs = npu.dispatch_libs(req.npu_dispatch_dir) if wants_npu else ()
    inputs = [m.path for m in models] + ([req.benchmark_binary] if req.benchmark_binary else [])
    results.ResultsFile.check(req.results_path, resume=req.resume, overwrite=req.overwrite, inputs=inputs)
    notices: list[str] = []
    failures: list[str] = []
    runners = _targets(req, notices, failures, npu_libs)  # notices: printed by api.run
    if wants_npu and any(isinstance(r, DesktopRunner) for r in runners):
        raise errors.NpuSetupError(
            "a model compiled for a phone NPU cannot run on the desktop fallback"
            + (" (no phone attached)" if "desktop" not in req.devices else "")
            + ": attach and authorize a Qualcomm phone and pass --device")
    out = results.ResultsFile(req.results_path, resume=req.resume, overwrite=req.overwrite, inputs=inputs)
    if out.bad_lines:
        shown = ", ".join(map(str, out.bad_lines[:10])) + (" ..." if len(out.bad_lines) > 10 else "")
        notices.append(f"{req.results_path}: {len(out.bad_lines)} unreadable line(s) skipped (line {shown}: "
                       f"torn by a killed run or corrupt); kept aside in {out.bad_path}, their trials are "
                       "measured again")
    stop = threading.Event()
    workers = [_Worker(req, r, models, out, stop) for r in runners]
    if workers:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(workers)) as pool:
            try:
                list(pool.map(lambda w: w(), workers))
            except KeyboardInterrupt:  # let running trials finish and land on disk, then stop
                stop.set()
                logging.warning("interrupted: finishing the trials in flight...")
                raise
    for w in workers:
        failures.extend(w.failures)
    return BenchReport(tuple(s for w in workers for s in w.summaries), tuple(failures),
                       tuple(notices), sum(w.ran for w in workers),
                       sum(w.skipped for w in workers))
