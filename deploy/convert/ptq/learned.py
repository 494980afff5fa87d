"""Weights and activation ranges learned by QAT (deploy/experimental/lsq.py), applied at export.

QAT trains on the quantized model's own graph: the float TFLite's constants and the calibration
ranges ("qsv") of its activation tensors. `Learned` carries both back to the per-layer route,
which writes the weights into the float TFLite (by tensor index: the same float TFLite, checked
by sha256), calibrates min/max as usual for the tensors QAT did not learn, and replaces the
learned tensors' ranges, so the exported model's scale and zero point are the learned ones.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Mapping

import numpy as np

from deploy.errors import UserInputError


class LearnedMismatch(UserInputError):
    """QAT's result belongs to another float model than the one being quantized."""


@dataclasses.dataclass(frozen=True, eq=False)
class Learned:
    """`weights`: float-TFLite tensor index -> trained float values (its shape and dtype);
    `ranges`: activation tensor name -> (min, max) as the quantizer's calibration takes them;
    `report`: what QAT did (steps, seconds, losses, tensors learned), recorded in the report."""
    float_sha256: str
    weights: Mapping[int, np.ndarray]
    ranges: Mapping[str, tuple[float, float]]
    report: Mapping[str, Any]

    def check(self, float_tflite: bytes) -> None:
        if hashlib.sha256(float_tflite).hexdigest() != self.float_sha256:
            raise LearnedMismatch("the QAT result was trained on another float model (input size, "
                                  "weights or rewrite differ): run QAT on this source and input size")

    def weights_into(self, float_tflite: bytes) -> bytes:
        """`float_tflite` with the learned constants written into their buffers."""
        from ai_edge_litert.tools import flatbuffer_utils
        self.check(float_tflite)
        if not self.weights:
            return float_tflite
        from ai_edge_litert import schema_py_generated as schema
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(float_tflite))
        sg = model.subgraphs[0]
        users: dict[int, int] = {}
        for g in model.subgraphs:
            for x in g.tensors:
                users[x.buffer] = users.get(x.buffer, 0) + 1
        for ti, w in sorted(self.weights.items()):
            t = sg.tensors[int(ti)]
            old = np.frombuffer(bytes(model.buffers[t.buffer].data), np.float32)
            new = np.ascontiguousarray(w, np.float32).ravel()
            if old.size != new.size:
                raise LearnedMismatch(f"learned tensor {ti} has {new.size} values, the model's {old.size}")
            if users[t.buffer] > 1:  # the converter shares one buffer between equal constants
                users[t.buffer] -= 1
                model.buffers.append(schema.BufferT())
                t.buffer = len(model.buffers) - 1
                users[t.buffer] = 1
            model.buffers[t.buffer].data = np.frombuffer(new.tobytes(), np.uint8)
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))

    def ranges_into(self, qsv: Mapping[str, dict]) -> dict:
        """The calibration result with each learned tensor's min/max replaced."""
        out = {k: dict(v) for k, v in qsv.items()}
        missing = sorted(set(self.ranges) - set(out))
        if missing:
            raise LearnedMismatch(f"learned ranges for tensors the calibration does not have: {missing[:3]}")
        for name, (lo, hi) in self.ranges.items():
            like = np.asarray(out[name]["min"])
            out[name]["min"] = np.full_like(like, lo, dtype=np.float32)
            out[name]["max"] = np.full_like(like, hi, dtype=np.float32)
        return out
