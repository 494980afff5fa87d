"""What every public result object shares: a short repr and a JSON file.

Result objects (QuantizedModel, CompiledModel, EvalResult, SearchOutcome, LatencyPrediction,
Policy) are frozen values; their repr names what they are in under 1,000 characters (no model
bytes, no per-candidate tables), `to_json()` gives the full JSON-able content and `save(path)`
writes that JSON (or, for a model, the model and its report) atomically.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: most characters a field's value may take in a repr
FIELD_CHARS = 120


def short(value: Any) -> str:
    """repr(value), cut to FIELD_CHARS; bytes and long collections as a size."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    text = repr(value)
    if len(text) <= FIELD_CHARS:
        return text
    if hasattr(value, "__len__"):
        return f"<{type(value).__name__} of {len(value)}>"
    return text[:FIELD_CHARS - 3] + "..."


def brief_repr(obj: Any, **fields: Any) -> str:
    """`Name(a=1, b='x', ...)` with each value cut by `short`."""
    return f"{type(obj).__name__}({', '.join(f'{k}={short(v)}' for k, v in fields.items())})"


def save_json(doc: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a result's JSON (indent 2, newline at the end), atomically; without `overwrite` an
    existing file is an OutputExistsError."""
    from deploy._files import atomic_write
    path = Path(path)
    atomic_write(path, json.dumps(doc, indent=2) + "\n", overwrite=overwrite)
    return path
