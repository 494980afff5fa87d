"""The test phone's ``benchmark_model``: runs the desktop LiteRT interpreter, prints the real log.

Why: the harness parses what TFLite's Android ``benchmark_model`` prints. This stand-in runs
the model for real (so a corrupt .tflite fails like on a phone) and prints the same lines
the real tool prints (formats copied from tests/data/bench_logs/ and from
tensorflow/lite/profiling/profile_summarizer.cc + core/util/stats_calculator.cc). Per-op
times are the measured average split by output size: the *format* is what is under test.
The fixture copies this file next to the double with a shebang naming this venv's python.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np


def _flags(argv: list[str]) -> dict[str, str]:
    out = {}
    for a in argv:
        if a.startswith("--") and "=" in a:
            k, v = a[2:].split("=", 1)
            out[k] = v
    return out


def _stat_line(samples: list[float]) -> str:
    ints = [int(s) for s in samples]
    if len(ints) == 1:
        return f"count=1 curr={ints[0]}"
    return (f"count={len(ints)} first={ints[0]} curr={ints[-1]} min={min(ints)} "
            f"max={max(ints)} avg={statistics.mean(samples):g} "
            f"std={int(statistics.pstdev(samples))}")


def _field(text: str, width: int) -> str:
    return "\t" + text.rjust(width)


def main(argv: list[str]) -> int:
    f = _flags(argv)
    log = lambda s="": print(f"INFO: {s}" if s else "", flush=True)  # noqa: E731
    graph = f.get("graph", "")
    threads = int(f.get("num_threads", "1"))
    runs, warm = int(f.get("num_runs", "50")), int(f.get("warmup_runs", "1"))
    profiling = f.get("enable_op_profiling") == "true"
    use_gpu = f.get("use_gpu") == "true"
    use_xnn = f.get("use_xnnpack", "true") != "false"
    log("STARTING!")
    log("Log parameter values verbosely: [0]")
    log(f"Min num runs: [{runs}]")
    log(f"Num threads: [{threads}]")
    log(f"Min warmup runs: [{warm}]")
    log(f"Graph: [{graph}]")
    if profiling:
        log("Enable op profiling: [1]")
    log(f"#threads used for CPU inference: [{threads}]")
    if use_gpu:
        log("Use gpu: [1]")
    log(f"Use xnnpack: [{int(use_xnn)}]")
    if not os.path.isfile(graph):
        print(f"ERROR: Could not open '{graph}'.", flush=True)
        print("ERROR: Benchmarking failed.", flush=True)
        return 1
    if f.get("use_npu") == "true":
        return _npu(f, graph, runs, warm, log)
    from ai_edge_litert import interpreter as litert  # noqa: PLC0415

    t0 = time.perf_counter()
    resolver = (litert.OpResolverType.AUTO if use_xnn
                else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    try:
        interp = litert.Interpreter(model_path=graph, num_threads=threads,
                                    experimental_op_resolver_type=resolver)
        interp.allocate_tensors()
    except Exception as e:  # noqa: BLE001 - mimic the tool: print and fail
        print(f"ERROR: Failed to mmap model {graph}: {e}", flush=True)
        print("ERROR: Benchmarking failed.", flush=True)
        return 1
    init_us = (time.perf_counter() - t0) * 1e6
    log(f"Loaded model {graph}")
    ops = interp._get_ops_details()  # noqa: SLF001
    nodes = [o for o in ops if o["op_name"] != "DELEGATE"]
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    if use_xnn:
        log("Created TensorFlow Lite XNNPACK delegate for CPU.")
        parts = len(ops) - len(nodes)
        log(f"Replacing {len(nodes)} out of {len(nodes)} node(s) with delegate "
            f"(TfLiteXNNPackDelegate) node, yielding {parts} partitions for the whole graph.")
    if use_gpu:
        ok = [o for o in nodes if all(tensors[i]["dtype"].__name__ != "int16"
                                      for i in o["outputs"])]
        log("Created TensorFlow Lite delegate for GPU.")
        log(f"Replacing {len(ok)} out of {len(nodes)} node(s) with delegate "
            f"(TfLiteGpuDelegateV2) node, yielding {1 if ok else 0} partitions "
            "for the whole graph.")
    log(f"The input model file size (MB): {os.path.getsize(graph) / 1e6:g}")
    log(f"Initialized session in {init_us / 1000:g}ms.")
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))

    def run(n: int) -> list[float]:
        out = []
        for _ in range(max(n, 1)):
            t = time.perf_counter()
            interp.invoke()
            out.append((time.perf_counter() - t) * 1e6)
        return out

    log(f"Running benchmark for at least {warm} iterations and at least 0 seconds but "
        "terminate if exceeding 150 seconds.")
    w = run(warm)
    log(_stat_line(w))
    log()
    log(f"Running benchmark for at least {runs} iterations and at least 0 seconds but "
        "terminate if exceeding 150 seconds.")
    r = run(runs)
    log(_stat_line(r))
    log()
    log(f"Inference timings in us: Init: {int(init_us)}, First inference: {int(w[0])}, "
        f"Warmup (avg): {statistics.mean(w):g}, Inference (avg): {statistics.mean(r):g}")
    log("Note: as the benchmark tool itself affects memory footprint, the following is only "
        "APPROXIMATE to the actual memory footprint of the model at runtime. Take the "
        "information at your discretion.")
    log("Memory footprint delta from the start of the tool (MB): init=1.23438 overall=1.5")
    log("Overall peak memory footprint (MB) via periodic monitoring: 41.8711")
    if profiling:
        _profile(nodes, tensors, statistics.mean(r) / 1000.0, log, delegated=use_xnn)
    return 0


def _npu(f: dict[str, str], graph: str, runs: int, warm: int, log) -> int:
    """LiteRT's benchmark_model with --use_npu: the dispatch folder must hold what was pushed
    and be on both library paths. The NPU is not emulated: timings are of an empty loop."""
    d = f.get("dispatch_library_path", "")
    log(f"dispatch_library_path: {d}")
    log(f"env LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '')} "
        f"ADSP_LIBRARY_PATH={os.environ.get('ADSP_LIBRARY_PATH', '')}")
    need = ("libLiteRtDispatch_Qualcomm.so", "libQnnHtp.so")
    missing = [n for n in need if not os.path.isfile(os.path.join(d, n))]
    if missing or {os.environ.get("LD_LIBRARY_PATH"), os.environ.get("ADSP_LIBRARY_PATH")} != {d}:
        print(f"ERROR: Failed to load dispatch library from {d}: missing {missing}", flush=True)
        print("ERROR: Benchmarking failed.", flush=True)
        return 1
    log(f"Loaded model {graph}")
    log(f"The input model file size (MB): {os.path.getsize(graph) / 1e6:g}")
    t0 = time.perf_counter()
    w = [(time.perf_counter() - t0) * 1e6 + 1 for _ in range(max(warm, 1))]
    r = [(time.perf_counter() - t0) * 1e6 + 1 for _ in range(max(runs, 1))]
    log(_stat_line(w))
    log(_stat_line(r))
    log(f"Inference timings in us: Init: 1000, First inference: {int(w[0])}, "
        f"Warmup (avg): {statistics.mean(w):g}, Inference (avg): {statistics.mean(r):g}")
    return 0


def _profile(nodes, tensors, avg_ms, log, *, delegated: bool) -> None:
    if delegated:  # a fully delegated graph profiles as one delegate node, like the real tool
        rows = [("TfLiteXNNPackDelegate", f"[{tensors[nodes[-1]['outputs'][0]]['name']}]:"
                 f"{len(nodes)}", avg_ms)]
    else:
        sizes = [max(1, int(np.prod(tensors[o["outputs"][0]]["shape"]))) for o in nodes]
        rows = [(o["op_name"],
                 "[" + ", ".join(tensors[i]["name"] for i in o["outputs"]) + f"]:{o['index']}",
                 avg_ms * s / sum(sizes)) for o, s in zip(nodes, sizes)]
    log("Operator-wise Profiling Info for Regular Benchmark Runs:")
    print("============================== Run Order ==============================")
    print(_field("[node type]", 24) + _field("[first]", 9) + _field("[avg ms]", 9)
          + _field("[%]", 8) + _field("[cdf%]", 8) + _field("[mem KB]", 10)
          + _field("[times called]", 9) + "\t[Name]")
    cdf = 0.0
    for op_type, name, ms in rows:
        pct = 100.0 * ms / avg_ms
        cdf += pct
        print(_field(op_type, 24) + _field(f"{ms:.3f}", 9) + _field(f"{ms:.3f}", 9)
              + _field(f"{pct:.3f}%", 8) + _field(f"{cdf:.3f}%", 8) + _field("0.000", 10)
              + _field("1", 9) + "\t" + name)
    print()
    print(f"Number of nodes executed: {len(rows)}")
    print("============================== Summary by node type "
          "==============================")
    print(_field("[Node type]", 24) + _field("[count]", 9) + _field("[avg ms]", 10)
          + _field("[avg %]", 11) + _field("[cdf %]", 11) + _field("[mem KB]", 10)
          + _field("[times called]", 10))
    by_type: dict[str, list[float]] = {}
    for op_type, _, ms in rows:
        by_type.setdefault(op_type, []).append(ms)
    cdf = 0.0
    for op_type, times in sorted(by_type.items(), key=lambda kv: -sum(kv[1])):
        pct = 100.0 * sum(times) / avg_ms
        cdf += pct
        print(_field(op_type, 24) + _field(str(len(times)), 9)
              + _field(f"{sum(times):.3f}", 10) + _field(f"{pct:.3f}%", 10)
              + _field(f"{cdf:.3f}%", 10) + _field("0.000", 10) + _field(str(len(times)), 9))
    print()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
