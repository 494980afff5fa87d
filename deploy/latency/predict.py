"""Predicted latency of one model on one device profile, with the per-layer breakdown.

Three inputs, one pricing: a zoo model or a user's Keras file (through the per-layer graph and
`from_device_profile`, at a uniform precision or a policy file), or a finished .tflite (its own
ops, each at the precision its tensors have: int8 -> a8w8, int16 -> a16w8, float -> float).
Behind `tools/predict_latency.py`; `bench/latency_published.py` holds it to published phone times.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from deploy.latency.cost_model import PRECISIONS, from_device_profile, op_work
from deploy.latency.htp_tiling import tiled_work
from deploy.latency.device_profiles import DeviceProfile, LatencyError, load_profile

__all__ = ["predict", "predict_keras", "predict_tflite"]


def _profile(profile: DeviceProfile | str) -> DeviceProfile:
    return profile if isinstance(profile, DeviceProfile) else load_profile(profile)


def predict_keras(model, profile: DeviceProfile | str, *, name: str, scale: int,
                  precision: Optional[str] = "a8w8", policy: Optional[str | Path] = None) -> dict:
    """A fixed-shape tf_keras model at a uniform precision or a policy (a Policy JSON path)."""
    from deploy.convert.per_layer import prepare
    prof = _profile(profile)
    prep = prepare(model)
    cost = from_device_profile(prep, prof, model=name, scale=scale)
    if policy is not None:
        from deploy.convert.policy import Policy
        pol = Policy.load(policy)
        pol.validate(prep.layers, model=name) if hasattr(pol, "validate") else None
        precisions, label = pol.resolved(prep.layers), str(policy)
    else:
        if precision not in PRECISIONS:
            raise LatencyError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
        precisions, label = {l: precision for l in prep.layers}, precision
    return {"model": name, "scale": scale, "precision": label, "profile": prof.name,
            "input_hw": list(cost.input_hw), "ms": cost.predict_ms(precisions),
            "breakdown": cost.breakdown(precisions)}


_DTYPE_PRECISION = {np.int8: "a8w8", np.uint8: "a8w8", np.int16: "a16w8", np.float32: "float", np.float16: "float"}


def predict_tflite(path: str | Path, profile: DeviceProfile | str) -> dict:
    """Price a .tflite's own ops: each op at the precision of its first output tensor's dtype
    (QUANTIZE/DEQUANTIZE as requantize passes), + the profile's invoke overhead."""
    from deploy.convert.tflite_io import make_interpreter
    prof = _profile(profile)
    interp = make_interpreter(str(path))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    rows, total = [], float(prof.invoke_overhead_us["a8w8"]) / 1e3
    for od in interp._get_ops_details():  # noqa: SLF001 - op inputs/outputs
        ins = [i for i in od["inputs"] if i >= 0]
        outs = [i for i in od["outputs"] if i >= 0]
        if not outs:
            continue
        out = tensors[outs[0]]
        out_el = int(np.prod(out["shape"])) if len(out["shape"]) else 1
        op = od["op_name"]
        klass, work = op_work(op, ins, out_el, tensors)
        if prof.tile > 1:  # the profile's NPU stores channels in tiles (htp_tiling)
            work = tiled_work(op, ins, outs, tensors, **prof.tiling)
        prec = _DTYPE_PRECISION.get(np.dtype(out["dtype"]).type, "float")
        if klass == "quantize":   # priced as one requantize pass at the wider side's precision
            prec = "a16w8" if any(np.dtype(tensors[i]["dtype"]) == np.int16 for i in ins + outs) else "a8w8"
        ms = prof.op_ms(klass, prec, work)
        total += ms
        rows.append({"kind": "op", "layer": out["name"], "op": op, "class": klass, "precision": prec,
                     "work": int(work), "ms": ms})
    rows.append({"kind": "fixed", "layer": "(invoke)", "precision": "-",
                 "ms": float(prof.invoke_overhead_us["a8w8"]) / 1e3})
    hw = interp.get_input_details()[0]["shape"][1:3]
    return {"model": Path(path).name, "scale": None, "precision": "as quantized (per op dtype)",
            "profile": prof.name, "input_hw": [int(v) for v in hw], "ms": total, "breakdown": rows}


def predict(*, profile: DeviceProfile | str, model: Optional[str] = None, scale: int = 4,
            precision: Optional[str] = "a8w8", input_hw: tuple[int, int] = (128, 128),
            policy: Optional[str | Path] = None, tflite: Optional[str | Path] = None,
            keras_model: Optional[str | Path] = None, keras: Any = None) -> dict:
    """Predicted latency (ms) and per-layer breakdown of exactly one of: a zoo `model`, a user's
    `keras_model` file, a Keras model object `keras`, or a `tflite` file."""
    given = [x for x in (model, tflite, keras_model, keras) if x is not None]
    if len(given) != 1:
        raise LatencyError("give exactly one of --model, --keras_model, --tflite")
    prof = _profile(profile)
    if tflite is not None:
        if policy is not None:
            raise LatencyError("--policy applies to a Keras model; a .tflite is priced as it is quantized")
        if not Path(tflite).is_file():
            raise LatencyError(f"--tflite {tflite} does not exist")
        return predict_tflite(tflite, prof)
    hw = tuple(int(v) for v in input_hw)
    if keras is not None:
        m, name = keras, keras.name
    elif keras_model is not None:
        from deploy.convert.sources import resolve
        src = resolve(None, scale, keras_model=str(keras_model))
        m, name = src.fixed(hw), src.name
    else:
        import models
        name = models.spec(model).name
        m = models.build(name, scale, input_shape=hw)   # latency needs no trained weights
    return predict_keras(m, prof, name=name, scale=scale, precision=precision, policy=policy)
