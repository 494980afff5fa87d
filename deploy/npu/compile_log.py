"""Parse the Qualcomm compiler's log (LiteRT apply_plugin_main + QAIRT) into plain facts.

Pure text -> dataclasses, so it is tested on captured real logs. Two streams share the log:
LiteRT's lines ("INFO: [file:line] ...", one per line, in order) and QNN's entries
("<t>ms [ LEVEL ] ...", several per line, buffered, so they interleave with LiteRT's out of order).
Each fact is therefore read from within one stream and joined by op name, never by position.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_QNN_ENTRY = re.compile(r"\d+\.\dms \[\s*([A-Z]+)\s*\]\s*")
_PARTITION = re.compile(r"Partitioned subgraph<(\d+)>, selected (\d+) ops, from a total of (\d+) ops\. "
                        r"resulted in (\d+) partitions")
_QNN_REJECT = re.compile(r"QNN op validation failed: '([^']+)' \(type=([^,)]+)(?:, operation=([^)]+))?\)")
_LITERT_REJECT = re.compile(r"LiteRT Op #(\d+) '([^']+)' \(code=(\d+)\) is not supported")
_IO_LINE = re.compile(r'^\s+\[(\d+)\] name="([^"]*)"(.*)$')
_DTYPE = re.compile(r"dtype=QNN_DATATYPE_(\w+) dims=\[([\d,]*)\]")
_CONTEXT = re.compile(r"Serialized a context bin of size \(bytes\): (\d+)")
_DDR = {k: re.compile(rf"\b{k}=(\d+)") for k in ("spill_bytes", "fill_bytes", "write_total_bytes", "read_total_bytes")}
_GENERIC = re.compile(r"validateOpConfig failed|master op validator .* failed|^Op specific validation failed"
                      r"|^Failed to validate op")

# Validator messages in plain words, with the fix we know (DESIGN.md "Phone NPUs, offline").
_HINTS = [
    (re.compile(r"incorrect Rank (\d+)"), "HTP does not take rank-{0} tensors for this op; write pixel shuffle with rank-4 tensors (reshape [1,H,W,r*r*C] -> [H,W,r,r*C], transpose (0,2,1,3), "
     "reshape [1,H*r,W*r,C]) or DEPTH_TO_SPACE"),
    (re.compile(r"Incorrect output dimension at index (\d+)\. Expected (\d+) but got (\d+)"),
     "HTP expects {1} along output dim {0} for these weights and strides, the model has {2} (its "
     "padding crops differently); use the equivalent sub-pixel convolution (conv + depth_to_space)"),
]
_MINIMUM16 = ("HTP's 16-bit element-wise Minimum/Maximum takes unsigned 16-bit only and LiteRT passes "
              "signed int16; keep this op at int8")


@dataclass(frozen=True)
class Rejection:
    """One op the HTP validator refused: it stays on the CPU."""
    op_index: int          # index in the input model's subgraph 0
    op: str                # LiteRT op name, e.g. "Reshape"
    qnn_op: str            # QNN's name for it, e.g. "Reshape_4"
    outputs: tuple[str, ...]  # TFLite output tensor names
    qnn_io: tuple[str, ...]   # "SFIXED_POINT_8[1,16,16,2,2,3]" per input then output
    messages: tuple[str, ...]  # the validator's own words (deduplicated)
    reason: str            # plain words: the validator's message, or our explanation

    def to_json(self) -> dict:
        return {"op_index": self.op_index, "op": self.op, "qnn_op": self.qnn_op, "outputs": list(self.outputs),
                "qnn_io": list(self.qnn_io), "messages": list(self.messages), "reason": self.reason}


@dataclass(frozen=True)
class DdrSummary:
    spill_bytes: int
    fill_bytes: int
    write_total_bytes: int
    read_total_bytes: int


@dataclass(frozen=True)
class CompileLog:
    partitions: tuple[tuple[int, int, int, int], ...]  # (subgraph, ops selected, ops total, partitions)
    rejections: tuple[Rejection, ...]
    context_binary_bytes: tuple[int, ...]
    ddr: tuple[DdrSummary, ...]       # one per compiled graph, in log order
    sdk_version: str | None           # QAIRT, e.g. "2.51.0.260929181845"
    qnn_soc_id: int | None
    htp_arch: int | None              # when the compiler logged an override to the SoC's arch
    errors: tuple[str, ...] = field(default=())  # LiteRT ERROR lines with a message (fatal ones)


def _qnn_entries(text: str) -> list[tuple[str, str]]:
    """(level, message) of every QNN log entry, in the order QNN wrote them."""
    out = []
    for m in _QNN_ENTRY.finditer(text):
        rest = text[m.end():]
        nxt = _QNN_ENTRY.search(rest)
        end = min(nxt.start() if nxt else len(rest), (rest.find("\n") + 1 or len(rest) + 1) - 1)
        msg = rest[:end].strip()
        for prefix in ("<E>", "<W>", "<I>"):
            msg = msg.removeprefix(prefix).strip()
        out.append((m.group(1), msg))
    return out


def _validator_messages(entries: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """QNN op name -> the validator's specific messages logged since that op's validation began."""
    found: dict[str, tuple[str, ...]] = {}
    pending: list[str] = []
    for level, msg in entries:
        if "validateOpConfig started" in msg:
            pending = []
        elif (m := re.match(r"Failed to validate op (\S+) with error", msg)):
            found[m.group(1)] = tuple(dict.fromkeys(pending))
            pending = []
        elif level == "ERROR" and not _GENERIC.search(msg):
            pending.append(re.sub(r"^\[\d+\]\s*", "", msg))
    return found


def _plain_reason(qnn_type: str, operation: str | None, io: list[str], messages: tuple[str, ...]) -> str:
    for msg in messages:
        for pattern, template in _HINTS:
            if (m := pattern.search(msg)):
                return f"{msg.rstrip('.')}: " + template.format(*m.groups())
    if operation in ("Minimum", "Maximum") and any(t.startswith("SFIXED_POINT_16") for t in io):
        return f"signed 16-bit {operation}: " + _MINIMUM16
    if messages:
        return "; ".join(m.rstrip(".") for m in messages)
    what = f"{qnn_type} ({operation})" if operation else qnn_type
    return f"HTP's validator rejected {what} with inputs {', '.join(io) or '?'} and gave no reason"


def _litert_rejections(lines: list[str], messages: dict[str, tuple[str, ...]]) -> list[Rejection]:
    out, i = [], 0
    qnn = None
    while i < len(lines):
        line = lines[i]
        if (m := _QNN_REJECT.search(line)):
            qnn = (m.group(1), m.group(2), m.group(3), [])
        elif qnn and (d := _DTYPE.search(line)):
            qnn[3].append(f"{d.group(1)}[{d.group(2)}]")
        elif (m := _LITERT_REJECT.search(line)):
            outputs, section, j = [], None, i + 1
            while j < len(lines) and (lines[j].startswith("  ") and lines[j].strip()):
                s = lines[j].strip()
                if s in ("Inputs:", "Outputs:"):
                    section = s
                elif section == "Outputs:" and (io := _IO_LINE.match(lines[j])):
                    outputs.append(io.group(2))
                j += 1
            name, qtype, operation, io_types = qnn if qnn else ("?", m.group(2), None, [])
            msgs = messages.get(name, ())
            out.append(Rejection(int(m.group(1)), m.group(2), name, tuple(outputs), tuple(io_types), msgs,
                                 _plain_reason(qtype, operation, io_types, msgs)))
            qnn, i = None, j - 1
        i += 1
    return out


def parse_compile_log(text: str) -> CompileLog:
    """Everything the report needs from one apply_plugin_main run's combined stdout+stderr."""
    entries = _qnn_entries(text)
    lines = text.splitlines()
    ddr_values = {k: [int(v) for v in p.findall(text)] for k, p in _DDR.items()}
    n_ddr = min(len(v) for v in ddr_values.values())
    sdk = re.search(r"SDK version: v?([\w.]+)", text)
    soc = re.search(r"Initializing QNN backend for SoC model: (\d+)", text)
    arch = re.search(r"will overwrite it to (\d+)", text)
    errors = tuple(dict.fromkeys(m.group(1).strip() for m in re.finditer(r"^ERROR: \[[^\]]+\][ \t]*(\S.*)$", text, re.M)
                                 if not m.group(1).startswith("ERROR: [")))
    return CompileLog(
        partitions=tuple(tuple(int(g) for g in m.groups()) for m in _PARTITION.finditer(text)),  # type: ignore[misc]
        rejections=tuple(_litert_rejections(lines, _validator_messages(entries))),
        context_binary_bytes=tuple(int(v) for v in _CONTEXT.findall(text)),
        ddr=tuple(DdrSummary(*(ddr_values[k][i] for k in _DDR)) for i in range(n_ddr)),
        sdk_version=sdk.group(1) if sdk else None,
        qnn_soc_id=int(soc.group(1)) if soc else None,
        htp_arch=int(arch.group(1)) if arch else None,
        errors=errors,
    )
