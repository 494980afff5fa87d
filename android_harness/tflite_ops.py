"""Which custom ops a .tflite holds, read straight from the flatbuffer (no TFLite import).

Why: a model compiled ahead of time for a phone NPU (`tools/npu_compile.py`) carries its NPU
partitions as DISPATCH_OP custom ops. Such a model runs only under LiteRT's NPU dispatch
(`--delegate npu`), and a plain model has nothing for the NPU to run, so the harness must tell
the two apart before touching a phone. The package never imports deploy/ (DESIGN.md), hence
this reader of the few fields needed: Model.operator_codes[i].custom_code
(tflite/schema/schema.fbs: Model field 1 = operator_codes, OperatorCode field 1 = custom_code).
"""

from __future__ import annotations

import struct

DISPATCH_OP = "DISPATCH_OP"  # LiteRT's custom op name for an NPU partition (context binary)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.d = data

    def u32(self, p: int) -> int:
        return struct.unpack_from("<I", self.d, p)[0]

    def field(self, table: int, index: int) -> int | None:
        """Position of field ``index`` of the table at ``table``; None when absent."""
        vt = table - struct.unpack_from("<i", self.d, table)[0]
        vsize = struct.unpack_from("<H", self.d, vt)[0]
        slot = 4 + 2 * index
        if slot + 2 > vsize:
            return None
        off = struct.unpack_from("<H", self.d, vt + slot)[0]
        return table + off if off else None

    def deref(self, p: int) -> int:
        return p + self.u32(p)

    def vector(self, p: int) -> list[int]:
        """Positions of the tables in the vector of tables at field position ``p``."""
        v = self.deref(p)
        n = self.u32(v)
        if v + 4 + 4 * n > len(self.d):
            raise ValueError("vector runs past the end of the file")
        return [self.deref(v + 4 + 4 * k) for k in range(n)]

    def string(self, p: int) -> str:
        s = self.deref(p)
        n = self.u32(s)
        if s + 4 + n > len(self.d):
            raise ValueError("string runs past the end of the file")
        return self.d[s + 4:s + 4 + n].decode("utf-8", errors="replace")


def custom_ops(data: bytes) -> set[str]:
    """Custom op codes of a TFLite model; empty for a file this reader cannot walk (the
    benchmark tool then reports the broken model itself)."""
    r = _Reader(data)
    try:
        model = r.deref(0)
        codes = r.field(model, 1)
        if codes is None:
            return set()
        out = set()
        for code in r.vector(codes):
            name = r.field(code, 1)
            if name is not None:
                out.add(r.string(name))
        return out
    except (struct.error, ValueError, IndexError):
        return set()


def is_npu_compiled(data: bytes) -> bool:
    """True for a model compiled ahead of time for an NPU (it holds DISPATCH_OP nodes)."""
    return DISPATCH_OP in custom_ops(data)
