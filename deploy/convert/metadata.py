"""What a runtime needs to use our .tflite without this repo, stored inside the model itself.

One entry in the flatbuffer's `Model.metadata` list, named `srdeploy`, whose buffer holds UTF-8
JSON: scale, input/output colour space (`rgb`|`y`) and value range, I/O dtypes with their
quantization scale and zero point, precision, the policy's sha256, model and weights names,
srdeploy version and a one-line description. LiteRT ignores metadata entries it does not know,
so the model loads and runs unchanged (tested), and any flatbuffer reader can find it by name.

Writer: LiteRT's own flatbuffer object API (`ai_edge_litert.schema_py_generated` +
`ai_edge_litert.tools.flatbuffer_utils`), which ships with the runtime we already depend on
(deploy/convert/io_types.py uses it too) and is generated from the current schema on every LiteRT
release. Not chosen: tflite-support's MetadataWriter (last release 0.4.4, July 2023; its wheel
pins protobuf<4 while tensorflow-cpu 2.21 needs protobuf>=6.31, so pip cannot install both —
checked with `pip install --dry-run tflite-support`), and `tensorflow.lite.tools.flatbuffer_utils`
(the same code, older copy, reachable only through TF's internal module path). We do not use
tflite-support's `TFLITE_METADATA` schema either: no maintained tool writes it.

The payload has no timestamps, so converting the same model twice gives the same bytes (the
harness and the report match models by sha256).
"""
from __future__ import annotations

from deploy.errors import UserInputError

import hashlib
import json
import struct
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

NAME = "srdeploy"
#: Bumped when a field changes meaning; readers check it.
FORMAT_VERSION = 1


class MetadataError(UserInputError):
    """A file that is not a TFLite model, or a model without srdeploy metadata (one line)."""


def srdeploy_version() -> str:
    from deploy.provenance import package_version
    return package_version("srdeploy", "unknown")


def _io(entries: Any) -> list[dict]:
    return [{k: e[k] for k in ("name", "shape", "dtype", "scale", "zero_point") if k in e}
            for e in entries or []]


def payload_from_report(report: Mapping[str, Any], description: Optional[str] = None) -> dict[str, Any]:
    """The metadata for a model from its convert report (deploy/convert/uniform.py, deploy/convert/per_layer.py)."""
    conv = report.get("io_convention") or {"channels": "rgb", "value_range": "0-1"}
    scale = int(report["scale"])
    precision = report.get("precision", "unknown")
    name = report.get("model", "model")
    value_range = [0.0, 1.0] if conv.get("value_range", "0-1") == "0-1" else [0.0, 255.0]
    return {
        "format_version": FORMAT_VERSION,
        "model": name, "scale": scale, "precision": precision,
        "weights": report.get("weights"),
        "input": {"colour_space": conv.get("channels", "rgb"), "value_range": value_range,
                  "layout": "NHWC", "tensors": _io(report.get("inputs"))},
        "output": {"colour_space": conv.get("channels", "rgb"), "value_range": value_range,
                   "layout": "NHWC", "tensors": _io(report.get("outputs"))},
        "policy_sha256": report.get("policy_sha256"),
        # post-training quantization recipe (deploy/convert/ptq label), only when options were used
        **({"ptq": report["ptq"]["label"]} if isinstance(report.get("ptq"), Mapping) else {}),
        "receptive_radius_lr": report.get("receptive_radius_lr"),
        "srdeploy_version": srdeploy_version(),
        "description": description or (
            f"{name} x{scale} super-resolution ({precision}): NHWC {conv.get('channels', 'rgb')} "
            f"in [{value_range[0]:g}, {value_range[1]:g}] in, {scale}x larger out; quantized I/O "
            "tensors map values as real = scale * (q - zero_point)"),
    }


def _read_object(tflite: bytes) -> schema.ModelT:
    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise MetadataError("not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        return flatbuffer_utils.read_model_from_bytearray(bytearray(tflite))
    except (struct.error, IndexError, ValueError, TypeError, AttributeError, UnicodeDecodeError) as e:
        # what a truncated flatbuffer raises; the cause stays chained for library users
        raise MetadataError(f"corrupt or truncated TFLite flatbuffer ({type(e).__name__})") from e


def embed(tflite: bytes, payload: Mapping[str, Any]) -> bytes:
    """`tflite` with our metadata entry set to `payload` (an existing entry is replaced)."""
    model = _read_object(tflite)
    for b in model.buffers:   # flatbuffers packs only ndarrays in one copy; a bytearray byte by byte (seconds)
        if b.data is not None and not isinstance(b.data, np.ndarray):
            b.data = np.frombuffer(bytes(b.data), np.uint8)
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    buf = schema.BufferT()
    buf.data = np.frombuffer(blob, np.uint8)
    ours = [m for m in (model.metadata or []) if _name(m.name) == NAME]
    if ours:  # reuse its buffer: embedding twice gives the same bytes as once
        model.buffers[ours[0].buffer] = buf
        model.metadata = [m for m in model.metadata if _name(m.name) != NAME] + ours[:1]
    else:
        model.buffers.append(buf)
        entry = schema.MetadataT()
        entry.name, entry.buffer = NAME, len(model.buffers) - 1
        model.metadata = list(model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(n: Any) -> str:
    return n.decode() if isinstance(n, bytes) else str(n)


def entries(tflite: bytes) -> dict[str, bytes]:
    """Every metadata entry of a model (name -> raw bytes), read without unpacking the graph."""
    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise MetadataError("not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        model = schema.Model.GetRootAs(tflite, 0)
        out = {}
        for i in range(model.MetadataLength()):
            m = model.Metadata(i)
            buf = model.Buffers(m.Buffer())
            if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
                out[_name(m.Name())] = bytes(tflite[buf.Offset():buf.Offset() + buf.Size()])
            else:
                out[_name(m.Name())] = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
        return out
    except (struct.error, IndexError, ValueError, TypeError, AttributeError, UnicodeDecodeError) as e:
        # what a truncated flatbuffer raises; the cause stays chained for library users
        raise MetadataError(f"corrupt or truncated TFLite flatbuffer ({type(e).__name__})") from e


def read(model: bytes | str | Path) -> dict[str, Any]:
    """Our metadata from a model file or bytes; MetadataError (one line) when absent or corrupt."""
    label = "model"
    if not isinstance(model, bytes):
        path = Path(model)
        label = str(path)
        if not path.is_file():
            raise MetadataError(f"{path} does not exist")
        model = path.read_bytes()
    try:
        found = entries(model)
    except MetadataError as e:
        raise MetadataError(f"{label}: {e}") from None
    if NAME not in found:
        names = ", ".join(sorted(found)) or "none"
        raise MetadataError(f"{label} has no '{NAME}' metadata (entries: {names}); convert it with "
                            "tools/convert.py to embed it")
    try:
        return json.loads(found[NAME].decode())
    except (UnicodeDecodeError, ValueError):
        raise MetadataError(f"{label}: the '{NAME}' metadata is not valid JSON") from None


def format_metadata(meta: Mapping[str, Any]) -> str:
    """A short human-readable listing (what `tools/report.py --inspect` prints)."""
    lines = [f"model        {meta.get('model')} x{meta.get('scale')} ({meta.get('precision')})",
             f"weights      {meta.get('weights')}",
             f"policy       sha256 {meta.get('policy_sha256') or '-'}"]
    for side in ("input", "output"):
        s = meta.get(side, {})
        lo, hi = (s.get("value_range") or [None, None])[:2]
        lines.append(f"{side:<12} {s.get('colour_space')} in [{lo}, {hi}], {s.get('layout')}")
        for t in s.get("tensors", []):
            q = (f"scale {t['scale']:.6g}, zero point {t['zero_point']}" if t.get("scale")
                 else "not quantized")
            lines.append(f"  {t.get('name')}: {t.get('dtype')} {t.get('shape')} ({q})")
    lines.append(f"srdeploy     {meta.get('srdeploy_version')} (metadata format {meta.get('format_version')})")
    lines.append(f"description  {meta.get('description')}")
    return "\n".join(lines)


def stamp(tflite: bytes, report: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Embed the report's metadata; the report gets the final size/sha256 and the payload."""
    payload = payload_from_report(report)
    out = embed(tflite, payload)
    return out, {**report, "size_bytes": len(out), "sha256": hashlib.sha256(out).hexdigest(),
                 "metadata": {"name": NAME, **payload}}
