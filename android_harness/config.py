"""Frozen benchmark configuration and the benchmark_model flags it implies.

Why one place: every result record stores this config, so the flags that ran on the phone
and the flags written to the JSON can never disagree.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Delegate = Literal["cpu", "xnnpack", "gpu", "nnapi", "hexagon", "qnn", "npu"]
DELEGATES: tuple[str, ...] = ("cpu", "xnnpack", "gpu", "nnapi", "hexagon", "qnn", "npu")

# Timeout tiers (seconds), per call, never one global value (STYLE.md item 11).
QUERY_S = 30.0          # getprop, dumpsys, sha256sum, mkdir
PUSH_S = 180.0          # one file over the sync protocol
BENCH_BASE_S = 120.0    # benchmark_model start-up, delegate compilation (QNN/GPU can be slow)
BENCH_PER_RUN_S = 5.0   # budget per warm-up/timed inference


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What one benchmark_model invocation does. ``key()`` identifies it for --resume."""

    delegate: str = "xnnpack"
    num_threads: int = 4
    num_runs: int = 50
    warmup_runs: int = 5
    enable_op_profiling: bool = False
    nnapi_accelerator_name: str = ""
    external_delegate_path: str = ""
    external_delegate_options: str = ""

    def __post_init__(self) -> None:
        if self.delegate not in DELEGATES:
            raise ValueError(f"--delegate must be one of {', '.join(DELEGATES)}, "
                             f"got {self.delegate!r}")
        if self.num_runs < 1 or self.warmup_runs < 0 or self.num_threads < 1:
            raise ValueError("--num_runs and --num_threads must be >= 1, --warmup_runs >= 0")
        if self.delegate == "qnn" and not self.external_delegate_path:
            raise ValueError("--delegate=qnn needs --external_delegate_path "
                             "(the phone path of libQnnTFLiteDelegate.so)")

    def bench_timeout_s(self) -> float:
        """The bench tier grows with the number of inferences asked for."""
        return BENCH_BASE_S + BENCH_PER_RUN_S * (self.num_runs + self.warmup_runs)

    def flags(self) -> list[str]:
        """benchmark_model flags (without --graph). Values are quoted later, by the shell layer.

        ``npu`` is LiteRT's benchmark_model (CompiledModel API), whose NPU flags are
        ``--use_npu`` and ``--dispatch_library_path`` (a directory: it becomes the
        Environment's DispatchLibraryDir) -- google-ai-edge/LiteRT
        litert/tools/benchmark_litert_model.h @062118e850a1fa3d4e8a54c8595cdf4f528fa57c and
        benchmark_litert_model.cc @057da3699ae4bb6e407902171c22522c05dc7ff1. The runner adds
        ``--dispatch_library_path`` (the phone folder it pushed the libraries to). That tool
        inherits num_threads/num_runs/warmup_runs/min_secs from TFLite's BenchmarkModel but has
        no --enable_op_profiling, so it is not passed.
        """
        f = [f"--num_threads={self.num_threads}", f"--num_runs={self.num_runs}",
             f"--warmup_runs={self.warmup_runs}", "--min_secs=0", "--warmup_min_secs=0"]
        d = self.delegate
        if d != "npu":
            f.append(f"--enable_op_profiling={'true' if self.enable_op_profiling else 'false'}")
        if d == "cpu":
            f.append("--use_xnnpack=false")
        elif d == "xnnpack":
            f.append("--use_xnnpack=true")
        elif d == "gpu":
            f.append("--use_gpu=true")
        elif d == "nnapi":
            f.append("--use_nnapi=true")
            if self.nnapi_accelerator_name:
                f.append(f"--nnapi_accelerator_name={self.nnapi_accelerator_name}")
        elif d == "hexagon":
            f.append("--use_hexagon=true")
        elif d == "npu":
            f.append("--use_npu=true")
        elif d == "qnn":
            f.append(f"--external_delegate_path={self.external_delegate_path}")
            if self.external_delegate_options:
                f.append(f"--external_delegate_options={self.external_delegate_options}")
        return f

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
