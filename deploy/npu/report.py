"""NPU compile reports as a table for people and a JSON dict for tools and the README bench."""
from __future__ import annotations

from typing import Any, Sequence

from deploy.npu.compiler import CompileReport


def _kib(n: int) -> str:
    return f"{n / 1024:.0f} KiB"


def report_table(reports: Sequence[CompileReport]) -> str:
    """One row per SoC, then every op left on the CPU with the compiler's reason."""
    head = f"{'SoC':<8} {'HTP':>4} {'NPU ops':>9} {'parts':>5} {'context':>10} {'DDR spill/fill':>15} {'compile':>8}"
    lines = [head]
    for r in reports:
        spill = sum(d.spill_bytes for d in r.ddr)
        fill = sum(d.fill_bytes for d in r.ddr)
        ddr = f"{_kib(spill)}/{_kib(fill)}" if r.ddr else "n/a"
        lines.append(f"{r.soc:<8} v{r.htp_arch:<3} {f'{r.ops_on_npu}/{r.ops_total}':>9} {r.partitions:>5} "
                     f"{_kib(sum(r.context_binary_bytes)):>10} {ddr:>15} {r.compile_seconds:>7.2f}s"
                     + ("  whole" if r.whole else ""))
    for r in reports:
        if r.cpu_ops:
            lines.append(f"{r.soc}: {len(r.cpu_ops)} op(s) on the CPU:")
            lines += [f"  #{c.index} {c.op} -> {', '.join(c.outputs)}: {c.reason}" for c in r.cpu_ops]
    if reports:
        v = reports[0].versions
        lines.append("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    return "\n".join(lines)


def report_json(reports: Sequence[CompileReport], files: Sequence[str] = ()) -> dict[str, Any]:
    """{"reports": [...]} with each compiled file's path where given (same order as `reports`)."""
    rows = [r.to_json() for r in reports]
    for row, path in zip(rows, files):
        row["compiled_path"] = str(path)
    return {"reports": rows}
