"""Desktop fallback: the same benchmark with the LiteRT interpreter on this machine.

Why: the latency cost model (deploy.latency) must work before anyone plugs in a phone. The
records have the same schema as phone records, with ``backend`` saying where they came from.
Two backends: the in-process ``ai_edge_litert.interpreter`` (default; µs resolution, node
list for the per-op profile) and the ``litert-benchmark`` CLI that ai-edge-litert ships
(its JSON rounds to 0.01 ms). Neither exposes per-op *times* to Python, so desktop op rows
carry node index, op type and output tensor names with ``avg_ms: null``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from android_harness import errors, thermal
from android_harness.config import BenchConfig
from android_harness.parser import BenchStats, Delegation, OpRecord, RunStats
from android_harness.runner import ModelFile, TrialOutput

DESKTOP_DELEGATES = ("cpu", "xnnpack")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class DesktopRunner:
    backend = "desktop-litert-interpreter"

    def __init__(self, tool: str = "interpreter") -> None:
        if tool not in ("interpreter", "litert-benchmark"):
            raise errors.HarnessError("--desktop_backend must be interpreter or litert-benchmark")
        self.tool = tool
        if tool == "litert-benchmark":
            self.backend = "desktop-litert-benchmark"

    def describe(self) -> dict:
        return {"serial": "desktop", "host": platform.node(), "label": "desktop",
                "aliases": ["desktop"], "model": _cpu_name(), "soc": platform.machine(),
                "android_version": "", "os": platform.platform(),
                "cpu_count": os.cpu_count()}

    def prepare(self, models: list[ModelFile]) -> dict[str, int]:
        return {"pushed": 0, "skipped": len(models)}

    def thermal(self) -> thermal.ThermalSnapshot:
        return thermal.ThermalSnapshot(None, None)

    def run_trial(self, model: ModelFile, config: BenchConfig,
                  timeout_s: float | None = None) -> TrialOutput:
        if config.delegate not in DESKTOP_DELEGATES:
            raise errors.HarnessError(f"--delegate={config.delegate} needs a phone; the desktop "
                                      f"fallback runs {' or '.join(DESKTOP_DELEGATES)}")
        if self.tool == "litert-benchmark":
            return self._litert_benchmark(model, config)
        return self._interpreter(model, config)

    def _interpreter(self, model: ModelFile, config: BenchConfig) -> TrialOutput:
        import numpy as np
        from ai_edge_litert import interpreter as litert

        resolver = (litert.OpResolverType.AUTO if config.delegate == "xnnpack"
                    else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        t0 = time.perf_counter()
        try:
            interp = litert.Interpreter(model_path=str(model.path),
                                        num_threads=config.num_threads,
                                        experimental_op_resolver_type=resolver)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise errors.ModelInvalid(f"model {model.path} does not load in LiteRT: "
                                      f"{str(e).splitlines()[0]}") from None
        init_us = (time.perf_counter() - t0) * 1e6
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))

        def timed(n: int) -> list[float]:
            out = []
            for _ in range(n):
                t = time.perf_counter()
                interp.invoke()
                out.append((time.perf_counter() - t) * 1e6)
            return out

        warm = timed(max(config.warmup_runs, 1))
        runs = timed(config.num_runs)
        ops = interp._get_ops_details()  # noqa: SLF001 - the only node list LiteRT exposes
        names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
        nodes = [o for o in ops if o["op_name"] != "DELEGATE"]
        records = tuple(
            OpRecord(op_type=o["op_name"], node_index=int(o["index"]), avg_ms=None,
                     outputs=tuple(names.get(int(i), "") for i in o["outputs"]),
                     name="[" + ", ".join(names.get(int(i), "") for i in o["outputs"])
                          + f"]:{o['index']}")
            for o in nodes) if config.enable_op_profiling else ()
        parts = len(ops) - len(nodes)
        delegs = (Delegation("TfLiteXNNPackDelegate", None, len(nodes), parts),) if parts else ()
        stats = BenchStats(
            init_us=init_us, first_us=warm[0], warmup_avg_us=statistics.mean(warm),
            inference_avg_us=statistics.mean(runs),
            warmup=_run_stats(warm), inference=_run_stats(runs),
            model_size_mb=model.size_bytes / 1e6, delegations=delegs, ops=records)
        log = (f"desktop LiteRT interpreter ({config.delegate}, {config.num_threads} threads)\n"
               f"Inference timings in us: Init: {init_us:.0f}, First inference: {warm[0]:.0f}, "
               f"Warmup (avg): {statistics.mean(warm):g}, "
               f"Inference (avg): {statistics.mean(runs):g}\n")
        return TrialOutput(log, 0, "ai_edge_litert.interpreter", stats)

    def _litert_benchmark(self, model: ModelFile, config: BenchConfig) -> TrialOutput:
        exe = shutil.which("litert-benchmark") or str(Path(sys.executable).parent
                                                      / "litert-benchmark")
        if not Path(exe).exists():
            raise errors.BinaryMissing("litert-benchmark not found: pip install ai-edge-litert")
        with tempfile.TemporaryDirectory() as tmp:
            out_json = Path(tmp) / "r.json"
            argv = [exe, "--model", str(model.path), "--num_runs", str(config.num_runs),
                    "--warmup_runs", str(max(config.warmup_runs, 1)),
                    "--num_threads", str(config.num_threads), "--result_json", str(out_json)]
            p = subprocess.run(argv, capture_output=True, text=True,
                               timeout=config.bench_timeout_s())
            if p.returncode != 0 or not out_json.exists():
                return TrialOutput(p.stdout + p.stderr, p.returncode or 1, " ".join(argv))
            lat = json.loads(out_json.read_text())["latency"]
        us = lambda k: None if lat.get(k) is None else lat[k] * 1000.0  # noqa: E731
        stats = BenchStats(
            init_us=us("init_ms"), first_us=us("warmup_first_ms"),
            warmup_avg_us=us("warmup_avg_ms"), inference_avg_us=us("avg_ms"),
            inference=RunStats(count=lat.get("num_runs", config.num_runs), avg_us=us("avg_ms"),
                               min_us=us("min_ms"), max_us=us("max_ms"), std_us=us("std_ms"),
                               median_us=us("median_ms")),
            model_size_mb=model.size_bytes / 1e6)
        return TrialOutput(p.stdout + p.stderr, 0, " ".join(argv), stats)


def _run_stats(samples: list[float]) -> RunStats:
    return RunStats(count=len(samples), first_us=samples[0], min_us=min(samples),
                    max_us=max(samples), avg_us=statistics.mean(samples),
                    std_us=statistics.pstdev(samples), median_us=statistics.median(samples))
