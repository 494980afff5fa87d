"""Phone NPUs, offline: compile a .tflite for Qualcomm's HTP with LiteRT's AOT compiler, report what
runs where, and emulate the compiled NPU partitions on x86 to measure the NPU's own numerics.

Importing this package is cheap (no TensorFlow, LiteRT or onnxruntime): the heavy modules load on
first use, so `tools/*.py --help` and the rest of `deploy` never pay for them.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Soc": "socs", "resolve_soc": "socs", "list_socs_text": "socs", "known_socs": "socs",
    "compile_tflite": "compiler", "compile_for_socs": "compiler", "CompileReport": "compiler",
    "CompiledModel": "compiler", "write_compiled": "compiler", "compiled_path": "compiler",
    "NpuEmulator": "emulate", "emulated_interpreter": "emulate",
    "report_table": "report", "report_json": "report",
    "placement_summary": "placement", "placement_lines": "placement", "check_placement": "placement",
    "compiled_for": "placement",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
