"""Parse what TFLite's ``benchmark_model`` prints. Pure: text in, frozen stats out.

Why pure: the same parser serves the phone runner, ``--parse_log`` on a saved file, and the
tests on real logs from public issues (tests/data/bench_logs/). It accepts the tool's plain
stdout, ``INFO:``-prefixed output of newer builds, old 1.x layouts, and logcat lines from the
Android benchmark app (``05-30 15:16:44.857  3380  3380 I tflite  : ...``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_LOGCAT = re.compile(r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+\S+\s*:\s?")
_LEVEL = re.compile(r"^(?:INFO|VERBOSE|WARNING|WARN|DEBUG): ")
_NUM = r"(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)"
_TIMINGS = re.compile(r"Inference timings in us: Init: " + _NUM + r", First inference: " + _NUM
                      + r", Warmup \(avg\): " + _NUM + r", Inference \(avg\): " + _NUM)
_OLD_TIMINGS = re.compile(r"Average inference timings in us: Warmup: " + _NUM + r", Init: "
                          + _NUM + r", no stats: " + _NUM)
_INIT_SESSION = re.compile(r"Initialized session in " + _NUM + r"\s*ms")
_COUNT = re.compile(r"^count=(\d+)\b(.*)$")
_KV = re.compile(r"(\w+)=" + _NUM)
_MEM_DELTA = re.compile(r"(?:Memory footprint delta from the start of the tool|Peak memory "
                        r"footprint) \(MB\): init=" + _NUM + r" overall=" + _NUM)
_MEM_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: " + _NUM)
_MODEL_SIZE = re.compile(r"The input model file size \(MB\): " + _NUM)
_REPLACING = re.compile(r"Replacing (\d+)(?: out of (\d+))? node\(s\) with delegate \(([^)]+)\)"
                        r" node, yielding (\d+) partitions")
_HEXAGON = re.compile(r"(\w+) delegate: (\d+) nodes delegated out of (\d+) nodes with (\d+) "
                      r"partitions")
_EXPLICIT = re.compile(r"Explicitly applied (\S+) delegate, and the model graph will be "
                       r"(completely|partially) executed by the delegate(?: w/ (\d+) delegate "
                       r"kernels)?")
_NOT_EXECUTED = re.compile(r"Though (\S+) delegate is explicitly applied, the model graph will "
                           r"not be executed by the delegate")
_NNAPI_ACCELS = re.compile(r"NNAPI accelerators available: \[([^\]]*)\]")
_TABLE = re.compile(r"^=+ (Run Order|Top by Computation Time|Top by Memory Use|Summary by node "
                    r"type) =+$")
_NODES_EXECUTED = re.compile(r"^Number of nodes executed: (\d+)")
_NODE_NAME = re.compile(r"^\[(.*)\]:(\d+)$")

_COLUMNS = {"node type": "op_type", "start": "start_ms", "first": "first_ms", "avg ms": "avg_ms",
            "%": "pct", "cdf%": "cdf_pct", "mem KB": "mem_kb", "times called": "times_called",
            "Name": "name", "Node type": "op_type", "count": "count", "avg %": "pct",
            "cdf %": "cdf_pct"}


@dataclasses.dataclass(frozen=True)
class RunStats:
    """One ``count=... first=... avg=...`` line, in microseconds."""

    count: int
    first_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None
    median_us: float | None = None


@dataclasses.dataclass(frozen=True)
class Delegation:
    """One delegate application as logged (``nodes_total`` is None in old logs)."""

    delegate: str
    nodes_delegated: int | None
    nodes_total: int | None
    partitions: int | None
    complete: bool | None = None    # "completely executed by the delegate" (no counts logged)

    @property
    def fraction(self) -> float | None:
        if self.complete:
            return 1.0
        if self.nodes_delegated == 0:
            return 0.0
        if self.nodes_delegated is None or not self.nodes_total:
            return None
        return self.nodes_delegated / self.nodes_total


@dataclasses.dataclass(frozen=True)
class OpRecord:
    """A row of an op-profiling table; ``node_index``/``outputs`` map back to the .tflite."""

    op_type: str
    name: str
    node_index: int | None
    outputs: tuple[str, ...]
    avg_ms: float | None
    first_ms: float | None = None
    pct: float | None = None
    times_called: int | None = None
    count: int | None = None
    subgraph: int = 0


@dataclasses.dataclass(frozen=True)
class BenchStats:
    """Everything one benchmark_model log says. Times in microseconds, memory in MB."""

    init_us: float | None = None
    first_us: float | None = None
    warmup_avg_us: float | None = None
    inference_avg_us: float | None = None
    warmup: RunStats | None = None
    inference: RunStats | None = None
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None
    memory_peak_mb: float | None = None
    model_size_mb: float | None = None
    #: "Number of nodes executed" of the per-op profile of the regular runs (primary subgraph); the
    #: initialization profile prints its own count, which is not this.
    nodes_executed: int | None = None
    nnapi_accelerators: tuple[str, ...] = ()
    delegations: tuple[Delegation, ...] = ()
    ops: tuple[OpRecord, ...] = ()
    ops_by_type: tuple[OpRecord, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.inference_avg_us is not None

    def coverage(self) -> Delegation | None:
        """The accelerator's entry if any (XNNPACK is applied by default), else the last one."""
        accel = [d for d in self.delegations if "xnnpack" not in d.delegate.lower()]
        pool = accel or list(self.delegations)
        known = [d for d in pool if d.nodes_total is not None]
        return (known or pool or [None])[-1]

    def to_dict(self) -> dict[str, Any]:
        cov = self.coverage()
        d = dataclasses.asdict(self)
        d["delegations"] = [dict(dataclasses.asdict(x), fraction=x.fraction)
                            for x in self.delegations]
        d["coverage"] = None if cov is None else dict(dataclasses.asdict(cov),
                                                       fraction=cov.fraction)
        d["inference_std_us"] = self.inference.std_us if self.inference else None
        d["inference_min_us"] = self.inference.min_us if self.inference else None
        d["inference_max_us"] = self.inference.max_us if self.inference else None
        return d


def _clean(line: str) -> str:
    line = _LOGCAT.sub("", line.rstrip("\r\n"))
    return _LEVEL.sub("", line)


def _float(text: str) -> float | None:
    try:
        return float(text.rstrip("%"))
    except ValueError:
        return None


def _run_stats(rest: str, count: int) -> RunStats:
    kv = {k: float(v) for k, v in _KV.findall(rest)}
    first = kv.get("first", kv.get("curr") if count == 1 else None)
    return RunStats(count=count, first_us=first, min_us=kv.get("min"), max_us=kv.get("max"),
                    avg_us=kv.get("avg", first if count == 1 else None), std_us=kv.get("std"),
                    median_us=kv.get("median"))


def _row(line: str, columns: list[str]) -> dict[str, str] | None:
    if "\t" in line:
        fields = [f.strip() for f in line.split("\t")]
        fields = fields[1:] if fields and fields[0] == "" else fields
    else:
        fields = line.split()
    if len(fields) < len(columns) - (0 if columns[-1] == "name" else 1) or not fields:
        return None
    if columns[-1] == "name":
        head = fields[: len(columns) - 1]
        fields = head + [" ".join(fields[len(columns) - 1:]).strip()]
    row = dict(zip(columns, fields))
    numeric = [c for c in columns if c not in ("op_type", "name")]
    if any(_float(row.get(c, "x")) is None for c in numeric):
        return None
    return row


def _op(row: dict[str, str], subgraph: int) -> OpRecord:
    name = row.get("name", "")
    m = _NODE_NAME.match(name)
    if m:
        outputs, index = tuple(s for s in m.group(1).split(", ") if s), int(m.group(2))
    elif name.startswith("[") and name.endswith("]"):
        outputs, index = tuple(s for s in name[1:-1].split(", ") if s), None
    else:
        outputs, index = (), None
    num = lambda c: _float(row[c]) if c in row else None  # noqa: E731
    called = num("times_called")
    count = num("count")
    return OpRecord(op_type=row["op_type"], name=name, node_index=index, outputs=outputs,
                    avg_ms=num("avg_ms"), first_ms=num("first_ms"), pct=num("pct"),
                    times_called=None if called is None else int(called),
                    count=None if count is None else int(count), subgraph=subgraph)


def parse(log: str) -> BenchStats:
    """Parse one benchmark_model log. Never raises on odd input: unknown lines are skipped."""
    f: dict[str, Any] = {}
    runs: list[RunStats] = []
    delegations: list[Delegation] = []
    ops: list[OpRecord] = []
    by_type: list[OpRecord] = []
    errors: list[str] = []
    section, subgraph = "regular", 0
    table: str | None = None
    columns: list[str] = []
    for raw in log.splitlines():
        if raw.startswith("ERROR: ") or "Benchmarking failed" in raw:
            errors.append(_clean(raw.replace("ERROR: ", "", 1)).strip())
        line = _clean(raw)
        text = line.strip()
        if table is not None:
            if not columns:
                columns = [_COLUMNS.get(c, c) for c in re.findall(r"\[([^\]]+)\]", text)]
                continue
            row = _row(line, columns) if text else None
            if row is None:
                table = None
                if not text:
                    continue
            else:
                if section == "regular" and table == "Run Order":
                    ops.append(_op(row, subgraph))
                elif section == "regular" and table == "Summary by node type":
                    by_type.append(_op(row, subgraph))
                continue
        if m := _TABLE.match(text):
            table, columns = m.group(1), []
        elif m := _NODES_EXECUTED.match(text):
            if section == "regular" and subgraph == 0:
                f["nodes_executed"] = int(m[1])
        elif text.startswith("Profiling Info for Benchmark Initialization"):
            section = "init"
        elif text.startswith("Operator-wise Profiling Info for Regular Benchmark Runs"):
            section, subgraph = "regular", 0
        elif m := re.match(r"Subgraph \(index: (\d+)\)", text):
            subgraph = int(m.group(1))
        elif text.startswith("Primary graph"):
            subgraph = 0
        elif m := _TIMINGS.search(text):
            f.update(init_us=float(m[1]), first_us=float(m[2]), warmup_avg_us=float(m[3]),
                     inference_avg_us=float(m[4]))
        elif m := _OLD_TIMINGS.search(text):
            f.update(warmup_avg_us=float(m[1]), init_us=float(m[2]),
                     inference_avg_us=float(m[3]))
        elif m := _INIT_SESSION.search(text):
            f.setdefault("init_us", float(m[1]) * 1000.0)
        elif m := _COUNT.match(text):
            runs.append(_run_stats(m.group(2), int(m.group(1))))
        elif m := _MEM_DELTA.search(text):
            f.update(memory_init_mb=float(m[1]), memory_overall_mb=float(m[2]))
        elif m := _MEM_PEAK.search(text):
            f["memory_peak_mb"] = float(m[1])
        elif m := _MODEL_SIZE.search(text):
            f["model_size_mb"] = float(m[1])
        elif m := _REPLACING.search(text):
            delegations.append(Delegation(m[3], int(m[1]), int(m[2]) if m[2] else None,
                                          int(m[4])))
        elif m := _HEXAGON.search(text):
            delegations.append(Delegation(m[1], int(m[2]), int(m[3]), int(m[4])))
        elif m := _NOT_EXECUTED.search(text):
            delegations.append(Delegation(m[1], 0, None, 0, complete=False))
        elif m := _NNAPI_ACCELS.search(text):
            f["nnapi_accelerators"] = tuple(a for a in m[1].split(",") if a)
        elif m := _EXPLICIT.search(text):
            if not any(m[1].lower() in d.delegate.lower() for d in delegations):
                full = m[2] == "completely"
                delegations.append(Delegation(m[1], None, None, 1 if full else (
                    int(m[3]) if m[3] else None), complete=full))
    if runs:
        f["inference"] = runs[-1]
        f["warmup"] = runs[0] if len(runs) > 1 else None
        if "inference_avg_us" not in f and runs[-1].avg_us is not None:
            f["inference_avg_us"] = runs[-1].avg_us
    return BenchStats(delegations=tuple(delegations), ops=tuple(ops), ops_by_type=tuple(by_type),
                      errors=tuple(errors), **f)
