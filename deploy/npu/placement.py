"""What runs where, for people converting a model: one warning line per op the NPU leaves on the CPU
(the compiler's reason and the fix), or "compiles whole"; and the compiled bytes an emulator needs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from deploy.npu import _tflite
from deploy.npu.compiler import CompiledModel, CompileError, CompileReport, compile_tflite
from deploy.npu.socs import Soc, resolve_soc

#: (words in the compiler's reason, the fix) — reasons from compile_log's hints already carry one.
_FIXES = [
    ("rank", "write pixel shuffle with rank-4 tensors (reshape [1,H,W,r*r*C] -> [H,W,r,r*C], transpose "
             "(0,2,1,3), reshape [1,H*r,W*r,C]) or DEPTH_TO_SPACE"),
    ("output dimension", "replace the strided deconvolution by its sub-pixel convolution (conv + depth_to_space)"),
    ("unsigned 16-bit", "keep this op's layer at a8w8 (policy) or clip with ReLU/ReLU6 instead of MINIMUM"),
]
_GENERIC_FIX = ("keep the op's layer at another precision (--policy) or replace the op by an equivalent "
                "HTP takes; the compiler's full log is in deploy.npu.compile_tflite(...).log")


def fix_for(reason: str) -> str:
    low = reason.lower()
    return next((fix for words, fix in _FIXES if words in low), _GENERIC_FIX)


def placement_summary(reports: Sequence[CompileReport]) -> dict[str, Any]:
    """{"<SoC>": {"ops_on_npu", "ops_total", "partitions", "whole", "cpu_ops": [{op, index, outputs,
    reason, fix}], "compile_seconds", "htp_arch"}} — the `npu` block of a convert report."""
    out = {}
    for r in reports:
        out[r.soc] = {"ops_on_npu": r.ops_on_npu, "ops_total": r.ops_total, "partitions": r.partitions,
                      "whole": r.whole, "htp_arch": r.htp_arch, "compile_seconds": round(r.compile_seconds, 3),
                      "cpu_ops": [{"index": c.index, "op": c.op, "outputs": list(c.outputs), "reason": c.reason,
                                   "fix": fix_for(c.reason)} for c in r.cpu_ops],
                      "versions": dict(r.versions)}
    return out


def placement_lines(summary: dict[str, Any]) -> list[str]:
    """One line per SoC that compiles whole, one warning line per op left on the CPU otherwise."""
    lines = []
    for soc, s in summary.items():
        if "error" in s:
            lines.append(f"warning: {soc}: {s['error']}")
        elif s["whole"]:
            lines.append(f"{soc}: compiles whole: {s['ops_on_npu']}/{s['ops_total']} ops in 1 partition")
        else:
            lines.append(f"warning: {soc}: {s['ops_on_npu']}/{s['ops_total']} ops on the NPU in "
                         f"{s['partitions']} partition(s); {len(s['cpu_ops'])} op(s) stay on the CPU:")
            for c in s["cpu_ops"]:
                lines.append(f"warning: {soc}: #{c['index']} {c['op']} ({', '.join(c['outputs'])}): {c['reason']}"
                             + ("" if c["fix"] in c["reason"] or _hinted(c["reason"]) else f"; fix: {c['fix']}"))
    return lines


def _hinted(reason: str) -> bool:
    """compile_log already appended the fix to the reasons it recognises."""
    return any(w in reason for w in ("write pixel shuffle", "sub-pixel convolution", "keep this op at int8"))


def check_placement(model: bytes | str | Path, socs: Sequence[str | Soc]) -> dict[str, Any]:
    """Compile `model` in memory for every SoC and summarise; a SoC whose compiler places nothing or
    fails is recorded as {"error": ...} (the model is still valid for the CPU)."""
    targets = [s if isinstance(s, Soc) else resolve_soc(s) for s in socs]
    reports, errors = [], {}
    for t in dict.fromkeys(targets):
        try:
            reports.append(compile_tflite(model, t).report)
        except CompileError as e:
            errors[t.name] = {"error": " ".join(str(e).split())}
    return {**placement_summary(reports), **errors}


def compiled_for(model: bytes | str | Path, soc: str | Soc) -> tuple[bytes, CompiledModel | None]:
    """The model compiled for `soc` (and its compile result), or the model itself when it already
    carries NPU partitions (then it must have been compiled for `soc`)."""
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    parsed = _tflite.load(data, "the model" if isinstance(model, bytes) else str(model))
    if any(_tflite.op_type(parsed, op) == _tflite.DISPATCH for op in parsed.subgraphs[0].operators or []):
        return data, None
    compiled = compile_tflite(data, soc)
    return compiled.model, compiled
