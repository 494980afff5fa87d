"""`deploy.predict_latency`: a model's predicted latency on a phone profile, as a frozen result.

Takes what the rest of the API gives: a `ModelSource` (at a uniform precision or a `Policy`), a
`Policy` alone (its zoo model), or what `deploy.quantize` returns (priced as quantized: each op
at its tensors' precision). Defaults match the rest of the API: 64x64 LR input, the `htp_npu`
profile the search uses. The pricing is `deploy.latency.predict`'s, as `tools/predict_latency.py`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Optional

from deploy.convert.api import DEFAULT_INPUT_HW, QuantizedModel
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource, require_source
from deploy.errors import UserInputError
from deploy.latency.device_profiles import DEFAULT_PROFILE, DeviceProfile


@dataclasses.dataclass(frozen=True, repr=False)
class LatencyPrediction:
    """Predicted latency (ms) of one model on one device profile, with the per-layer breakdown.

    `to_json()` is the same document as `tools/predict_latency.py --json`; `save(path)` writes it."""
    model: str
    scale: Optional[int]
    precision: str
    profile: str
    input_hw: tuple[int, int]
    ms: float
    breakdown: tuple[Mapping[str, Any], ...]

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        return brief_repr(self, model=self.model, scale=self.scale, precision=self.precision,
                          profile=self.profile, input_hw=self.input_hw, ms=round(self.ms, 4),
                          breakdown=self.breakdown)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "scale": self.scale, "precision": self.precision, "profile": self.profile,
                "input_hw": list(self.input_hw), "ms": self.ms, "breakdown": [dict(r) for r in self.breakdown]}

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        from deploy._results import save_json
        return save_json(self.to_json(), path, overwrite=overwrite)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "LatencyPrediction":
        return cls(str(doc["model"]), doc.get("scale"), str(doc["precision"]), str(doc["profile"]),
                   tuple(doc["input_hw"]), float(doc["ms"]), tuple(doc["breakdown"]))


def predict_latency(model: ModelSource | QuantizedModel | Policy, policy: Optional[Policy | str] = None, *,
                    device_profile: DeviceProfile | str = DEFAULT_PROFILE,
                    input_size: tuple[int, int] = DEFAULT_INPUT_HW) -> LatencyPrediction:
    """Predicted latency of a model on a device profile.

    Args:
        model: a `ModelSource` (`deploy.load_model`), a `QuantizedModel` (`deploy.quantize`:
            priced as it is quantized, each op at its tensors' precision) or a `Policy` (its zoo
            model, priced at that policy).
        policy: for a `ModelSource`: a `Policy` or a uniform precision (`int8` = `a8w8`, the
            default; `a16w8` = `int16x8`; `float`). Not for the other two.
        device_profile: a shipped profile name (`deploy.latency.device_profiles.known_profiles()`)
            or a `DeviceProfile`.
        input_size: the fixed LR input (H, W) priced; a `QuantizedModel` has its own.
    Returns:
        A frozen `LatencyPrediction` (`.ms`, `.breakdown`, `.to_json()`, `.save(path)`).
    Raises:
        deploy.errors.UserInputError: a wrong combination of arguments, an unknown profile or
            precision (`LatencyError`), a policy for another model or with unknown layers
            (`PolicyError`).
        deploy.errors.ModelError: a policy's model that is not in the zoo.
    """
    from deploy.convert import args
    from deploy.latency import predict as _predict
    if isinstance(model, QuantizedModel):
        if policy is not None:
            raise UserInputError("a quantized model is priced as it is quantized; pass no policy", option="policy")
        r = model.report
        doc = _predict.predict_tflite(model.tflite_bytes, device_profile, name=str(r.get("model", "model")))
        return _result(doc, scale=r.get("scale"))
    if isinstance(model, Policy):
        if policy is not None:
            raise UserInputError("pass a Policy as the model or as the policy, not both", option="policy")
        from deploy.convert.sources import resolve
        model, policy = resolve(model.model, model.scale, weights=False), model  # latency needs no weights
    require_source(model, "model")
    input_size = args.input_size(input_size, allow_none=False)
    from deploy.convert.per_layer import prepare_source
    prep = prepare_source(model, input_size)
    if isinstance(policy, Policy):
        doc = _predict.predict_prepared(prep, device_profile, name=model.name, scale=model.scale, policy=policy)
    else:
        doc = _predict.predict_prepared(prep, device_profile, name=model.name, scale=model.scale,
                                        precision="a8w8" if policy is None else policy)
    return _result(doc)


def _result(doc: Mapping[str, Any], **over: Any) -> LatencyPrediction:
    return LatencyPrediction.from_json({**doc, **over})
