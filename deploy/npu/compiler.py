"""Compile a .tflite for Qualcomm HTP NPUs offline and say what runs where.

Runs LiteRT's AOT compiler (apply_plugin_main + the Qualcomm plugin + QAIRT from onnxruntime-qnn)
in a subprocess, which keeps the whole log: the partition counts, the validator's reason for every
op left on the CPU and the DDR summary are only there (LiteRT's Python `aot_compile` drops it).
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from deploy._files import OutputExistsError, atomic_write, sha256_bytes
from deploy.errors import SrdeployError, UserInputError
from deploy.npu import _tflite
from deploy.npu.compile_log import CompileLog, DdrSummary, parse_compile_log
from deploy.npu.socs import Soc, resolve_soc

COMPILE_TIMEOUT_S = 600


class CompileError(SrdeployError):
    """The NPU compiler failed or placed nothing on the NPU."""


@dataclass(frozen=True)
class CpuOp:
    """An op of the compiled model that runs on the phone's CPU, and why."""
    index: int              # position in the compiled model's subgraph 0
    op: str                 # e.g. "RESHAPE"
    outputs: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class CompileReport:
    source: str
    source_sha256: str
    soc: str
    htp_arch: int
    ops_total: int
    ops_on_npu: int
    partitions: int
    cpu_ops: tuple[CpuOp, ...]
    context_binary_bytes: tuple[int, ...]
    ddr: tuple[DdrSummary, ...]
    compile_seconds: float
    compiled_bytes: int
    versions: dict[str, str] = field(hash=False)

    @property
    def whole(self) -> bool:
        """Every op on the NPU, in one partition: no CPU round trips on the phone."""
        return self.ops_on_npu == self.ops_total and self.partitions == 1 and not self.cpu_ops

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "source_sha256": self.source_sha256, "soc": self.soc,
            "htp_arch": self.htp_arch, "ops_total": self.ops_total, "ops_on_npu": self.ops_on_npu,
            "partitions": self.partitions, "whole": self.whole,
            "cpu_ops": [{"index": c.index, "op": c.op, "outputs": list(c.outputs), "reason": c.reason}
                        for c in self.cpu_ops],
            "context_binary_bytes": list(self.context_binary_bytes),
            "ddr": [vars(d) for d in self.ddr],
            "ddr_spill_bytes": sum(d.spill_bytes for d in self.ddr),
            "ddr_fill_bytes": sum(d.fill_bytes for d in self.ddr),
            "compile_seconds": round(self.compile_seconds, 3), "compiled_bytes": self.compiled_bytes,
            "versions": dict(self.versions),
        }


@dataclass(frozen=True, repr=False)
class CompiledModel:
    """One model compiled for one SoC: the compiled .tflite, where its ops run, the compiler log.

    `save(path)` writes the model and its report JSON beside it; `to_json()` is the report."""
    soc: Soc
    model: bytes            # the compiled .tflite (DISPATCH_OP nodes carry the context binaries)
    report: CompileReport
    log: str = field(repr=False)

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        r = self.report
        return brief_repr(self, soc=r.soc, ops_on_npu=f"{r.ops_on_npu}/{r.ops_total}", partitions=r.partitions,
                          cpu_ops=len(r.cpu_ops), whole=r.whole, model=self.model)

    def to_json(self) -> dict[str, Any]:
        return self.report.to_json()

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the compiled model at `path` and its report at `path` with .json, atomically.

        Raises:
            deploy._files.OutputExistsError: either file exists and `overwrite` is False.
        """
        from deploy._files import check_outputs
        from deploy._results import save_json
        path = Path(path)
        side = path.with_suffix(".json")
        check_outputs((path, side), overwrite=overwrite)
        atomic_write(path, self.model, overwrite=overwrite)
        save_json(self.to_json(), side, overwrite=overwrite)
        return path


def _read_source(tflite: bytes | str | Path) -> tuple[bytes, str]:
    if isinstance(tflite, bytes):
        return tflite, "the model"
    path = Path(tflite)
    if not path.is_file():
        raise UserInputError(f"{path}: no such .tflite file")
    return path.read_bytes(), str(path)


def _cpu_ops(compiled: Any, log: CompileLog) -> tuple[CpuOp, ...]:
    reasons = {name: r.reason for r in log.rejections for name in r.outputs}
    out = []
    for i, op in enumerate(compiled.subgraphs[0].operators or []):
        kind = _tflite.op_type(compiled, op)
        if kind == _tflite.DISPATCH:
            continue
        names = tuple(_tflite.tensor_name(compiled, int(t)) for t in op.outputs)
        reason = next((reasons[n] for n in names if n in reasons),
                      "not selected by the partitioner (the compiler logged no reason)")
        out.append(CpuOp(i, kind, names, reason))
    return tuple(out)


def _fail(log: CompileLog, text: str, what: str, soc: Soc) -> CompileError:
    if log.partitions and all(sel == 0 for _, sel, _, _ in log.partitions):
        total = sum(t for _, _, t, _ in log.partitions)
        why = "; ".join(dict.fromkeys(f"{r.op}: {r.reason}" for r in log.rejections)) or "no op passed validation"
        return CompileError(f"the {soc.name} NPU compiler placed none of the {total} ops of {what} on the NPU "
                            f"({why})")
    detail = log.errors[-1] if log.errors else (text.strip().splitlines() or ["no output"])[-1]
    return CompileError(f"the {soc.name} NPU compiler failed on {what}: {detail}")


def compile_tflite(tflite: bytes | str | Path, soc: str | Soc,
                   compiler_flags: Sequence[str] = ()) -> CompiledModel:
    """AOT-compile one model for one SoC; `compiler_flags` e.g. ["--qualcomm_profiling=optrace"]."""
    from deploy.npu.qairt import toolchain
    target = soc if isinstance(soc, Soc) else resolve_soc(soc)
    data, what = _read_source(tflite)
    _tflite.check_compilable(data, what)
    tools = toolchain()
    with tempfile.TemporaryDirectory(prefix="srdeploy-npu-") as tmp:
        src, dst = Path(tmp) / "model.tflite", Path(tmp) / "compiled.tflite"
        src.write_bytes(data)
        cmd = [str(tools.apply_plugin), "--cmd=apply", f"--model={src}", f"--o={dst}",
               "--soc_manufacturer=Qualcomm", f"--soc_model={target.name}", f"--libs={tools.plugin_dir}",
               "--err=--", *compiler_flags]
        start = time.perf_counter()
        try:
            run = subprocess.run(cmd, env=tools.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, errors="replace", timeout=COMPILE_TIMEOUT_S, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise CompileError(f"the {target.name} NPU compiler ran over {COMPILE_TIMEOUT_S} s on {what}") from None
        seconds = time.perf_counter() - start
        log = parse_compile_log(run.stdout)
        if run.returncode != 0 or not dst.is_file():
            raise _fail(log, run.stdout, what, target)
        out = dst.read_bytes()
    compiled = _tflite.load(out, f"the compiled {what}")
    dispatch = sum(_tflite.op_type(compiled, op) == _tflite.DISPATCH for op in compiled.subgraphs[0].operators)
    report = CompileReport(
        source=what, source_sha256=sha256_bytes(data), soc=target.name,
        htp_arch=log.htp_arch or target.htp_arch,
        ops_total=sum(t for _, _, t, _ in log.partitions), ops_on_npu=sum(s for _, s, _, _ in log.partitions),
        partitions=dispatch, cpu_ops=_cpu_ops(compiled, log), context_binary_bytes=log.context_binary_bytes,
        ddr=log.ddr, compile_seconds=seconds, compiled_bytes=len(out),
        versions={"ai-edge-litert": tools.litert_version, "onnxruntime-qnn": tools.onnxruntime_qnn_version,
                  "qairt": log.sdk_version or "unknown"})
    return CompiledModel(target, out, report, run.stdout)


def compile_for_socs(tflite: bytes | str | Path, socs: str | Soc | Sequence[str | Soc]) -> list[CompiledModel]:
    """`deploy.npu_compile`: one compile per SoC; every SoC name is checked before the first
    compile starts.

    Args:
        tflite: a quantized model: its bytes, a path, or what `deploy.quantize` returns.
        socs: one SoC (`"SM8650"`, `"qualcomm:SM8650"`) or several.
    Returns:
        One `CompiledModel` per distinct SoC, in the order given.
    Raises:
        UnknownSocError: a SoC name that is not a known target (the message lists them).
        CompileError, NpuToolsMissingError: the compiler failed, or is not installed.
    """
    if isinstance(socs, (str, Soc)):  # one SoC, not its letters
        socs = [socs]
    if hasattr(tflite, "tflite_bytes"):  # a QuantizedModel
        tflite = tflite.tflite_bytes
    targets = [s if isinstance(s, Soc) else resolve_soc(s) for s in socs]
    if not targets:
        raise UserInputError("name at least one SoC (e.g. SM8650)")
    return [compile_tflite(tflite, t) for t in dict.fromkeys(targets)]


def compiled_path(out_dir: str | Path, stem: str, soc: Soc) -> Path:
    return Path(out_dir) / f"{stem}_{soc.vendor}_{soc.name}.tflite"


def write_compiled(results: Sequence[CompiledModel], out_dir: str | Path, stem: str,
                   overwrite: bool = False) -> list[Path]:
    """Write every compiled model (atomically); refuses to replace files unless `overwrite`."""
    paths = [compiled_path(out_dir, stem, r.soc) for r in results]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{existing[0]} exists; pass overwrite=True to replace it", file=existing[0])
    for path, r in zip(paths, results):
        atomic_write(path, r.model, overwrite=overwrite)  # atomic: never over a racing run's file
    return paths
