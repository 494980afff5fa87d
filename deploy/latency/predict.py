"""Predicted latency of one model on one device profile, with the per-layer breakdown.

Three inputs, one pricing: a zoo model or a user's Keras file (through the per-layer graph and
`from_device_profile`, at a uniform precision or a policy file), or a finished .tflite (its own
ops, each at the precision its tensors have: int8 -> a8w8, int16 -> a16w8, float -> float).
Behind `tools/predict_latency.py`; `bench/latency_published.py` holds it to published phone times.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from deploy.convert.precisions import PrecisionError, layer as layer_precision
from deploy.latency.cost_model import from_device_profile, op_work
from deploy.latency.htp_fusion import fused_ops
from deploy.latency.htp_tiling import activation_ids, tiled_work, traffic_elements, weight_elements
from deploy.latency.op_pricing import invoke_ms, op_ms
from deploy.latency.device_profiles import DeviceProfile, LatencyError, load_profile

__all__ = ["predict", "predict_frame", "predict_keras", "predict_prepared", "predict_tflite"]


def _profile(profile: DeviceProfile | str) -> DeviceProfile:
    return profile if isinstance(profile, DeviceProfile) else load_profile(profile)


def predict_keras(model, profile: DeviceProfile | str, *, name: str, scale: int,
                  precision: Optional[str] = "a8w8", policy: Optional[str | Path] = None) -> dict:
    """A fixed-shape tf_keras model at a uniform precision or a policy (a Policy JSON path)."""
    from deploy.convert.per_layer import prepare
    return predict_prepared(prepare(model), profile, name=name, scale=scale, precision=precision, policy=policy)


def predict_prepared(prep, profile: DeviceProfile | str, *, name: str, scale: int,
                     precision: Optional[str] = "a8w8", policy: Optional[str | Path] = None) -> dict:
    """predict_keras on an already prepared float graph (deploy.convert.per_layer.prepare): one
    conversion priced on many profiles and precisions."""
    prof = _profile(profile)
    cost = from_device_profile(prep, prof, model=name, scale=scale)
    if policy is not None:  # a Policy, or the path of a policy file
        from deploy.convert.policy import Policy
        pol = policy if isinstance(policy, Policy) else Policy.load(policy)
        pol.validate(prep.layers, model=name)
        label = (f"policy (default {pol.default}, {len(pol.layers)} layer(s) set)" if isinstance(policy, Policy)
                 else str(policy))
        precisions = pol.resolved(prep.layers)
    else:
        try:
            precision = layer_precision(precision)  # int8 = a8w8, int16x8 = a16w8
        except PrecisionError as e:
            raise LatencyError(str(e)) from None
        precisions, label = {l: precision for l in prep.layers}, precision
    return {"model": name, "scale": scale, "precision": label, "profile": prof.name,
            "input_hw": list(cost.input_hw), "ms": cost.predict_ms(precisions),
            "breakdown": cost.breakdown(precisions)}


_DTYPE_PRECISION = {np.int8: "a8w8", np.uint8: "a8w8", np.int16: "a16w8", np.float32: "float", np.float16: "float"}


def predict_tflite(path: str | Path | bytes, profile: DeviceProfile | str, *, name: Optional[str] = None) -> dict:
    """Price a .tflite's own ops (a file, or its bytes with a `name`): each op at the precision of
    its first output tensor's dtype (QUANTIZE/DEQUANTIZE as requantize passes), + the profile's
    start-up cost (per precision: weighted by the ops' precisions, op_pricing.invoke_ms)."""
    from deploy.convert.tflite_io import make_interpreter
    prof = _profile(profile)
    interp = make_interpreter(path if isinstance(path, bytes) else str(path))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    rows, total, n_at = [], 0.0, {}
    ops = interp._get_ops_details()  # noqa: SLF001 - op inputs/outputs
    acts = activation_ids(ops, [d["index"] for d in interp.get_input_details()])
    io_ids = {int(d["index"]) for d in interp.get_input_details() + interp.get_output_details()}
    io_prec: dict[int, str] = {}   # model I/O tensor -> precision of the op reading / writing it
    fuse = prof.fuse
    fused = fused_ops(ops, tensors, acts, [d["index"] for d in interp.get_output_details()], fuse["kinds"],
                      fuse["tile"]) if fuse["kinds"] else {}
    for k, od in enumerate(ops):
        ins = [i for i in od["inputs"] if i >= 0]
        outs = [i for i in od["outputs"] if i >= 0]
        if not outs or od["op_name"] == "DELEGATE":   # a delegate node repeats the ops it holds
            continue
        out = tensors[outs[0]]
        out_el = int(np.prod(out["shape"])) if len(out["shape"]) else 1
        op = od["op_name"]
        klass, work = op_work(op, ins, out_el, tensors)
        if k in fused:   # folded into its neighbour by the NPU compiler: no cost of its own (htp_fusion)
            rows.append({"kind": "op", "layer": out["name"], "op": op, "class": klass, "precision": "-",
                         "work": 0, "ms": 0.0, "fused": fused[k]})
            continue
        if prof.tile > 1:  # the profile's NPU stores channels in tiles (htp_tiling)
            work = tiled_work(op, ins, outs, tensors, **prof.tiling)
        prec = _DTYPE_PRECISION.get(np.dtype(out["dtype"]).type, "float")
        if klass == "quantize":   # priced as one requantize pass at the wider side's precision
            prec = "a16w8" if any(np.dtype(tensors[i]["dtype"]) == np.int16 for i in ins + outs) else "a8w8"
        ms = op_ms(prof, klass, prec, work, traffic_elements(ins, outs, tensors, acts, prof.traffic_tile),
                   weight_elements(op, ins, tensors))
        total += ms
        n_at[prec] = n_at.get(prec, 0) + 1
        for i in ins + outs:
            if int(i) in io_ids:
                io_prec.setdefault(int(i), prec)
        rows.append({"kind": "op", "layer": out["name"], "op": op, "class": klass, "precision": prec,
                     "work": int(work), "ms": ms})
    start = invoke_ms(prof, n_at)   # per precision: weighted by the ops' precisions (op_pricing)
    total += start
    rows.append({"kind": "fixed", "layer": "(invoke)", "precision": "-", "ms": start})
    io_ms = sum(prof.io_ms(io_prec.get(int(d["index"]), "a8w8"), int(np.prod(d["shape"])))
                for d in interp.get_input_details() + interp.get_output_details())
    if io_ms:
        total += io_ms
        rows.append({"kind": "fixed", "layer": "(model I/O)", "precision": "-", "ms": io_ms})
    hw = interp.get_input_details()[0]["shape"][1:3]
    return {"model": name or Path(path).name, "scale": None, "precision": "as quantized (per op dtype)",
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
    m, name = _build(model, keras_model, keras, scale, tuple(int(v) for v in input_hw))
    return predict_keras(m, prof, name=name, scale=scale, precision=precision, policy=policy)


def _build(model: Optional[str], keras_model, keras, scale: int, hw: tuple[int, int]):
    """(a fixed-shape tf_keras model at LR size hw, its name) for a zoo name, a Keras file or object."""
    if keras is not None:   # a model object is priced as given
        return keras, keras.name
    if keras_model is not None:
        from deploy.convert.sources import resolve
        src = resolve(None, scale, keras_model=str(keras_model))
        return src.fixed(hw), src.name
    import models
    name = models.spec(model).name
    return models.build(name, scale, input_shape=hw), name   # latency needs no trained weights


def predict_frame(*, profiles: Sequence[DeviceProfile | str], frame_wh: tuple[int, int], scale: int,
                  model: Optional[str] = None, keras_model: Optional[str | Path] = None,
                  precision: Optional[str] = "a8w8", policy: Optional[str | Path] = None) -> dict:
    """Per profile: the cost of one output frame W x H whole and in every tile size, cheapest
    first (deploy.latency.frames), from the model priced at two LR sizes."""
    from deploy.latency import frames
    from models.complexity import receptive_radius
    if (model is None) == (keras_model is None):
        raise LatencyError("--frame prices a zoo --model or a --keras_model (a .tflite has one fixed size)")
    lr_hw = frames.lr_frame(frame_wh, scale)
    profs = [_profile(p) for p in profiles]
    sizes = ((64, 64), (96, 128))
    built = {hw: _build(model, keras_model, None, scale, hw) for hw in sizes}
    halo = receptive_radius(built[sizes[0]][0])
    from deploy.convert.per_layer import prepare
    preps = {hw: prepare(m) for hw, (m, _) in built.items()}
    name = built[sizes[0]][1]
    out = {"model": name, "scale": scale, "precision": str(policy or precision),
           "frame_wh": list(frame_wh), "lr_hw": list(lr_hw), "halo_lr": round(halo, 2), "profiles": {}}
    for prof in profs:
        ms = {hw: predict_prepared(prep, prof, name=name, scale=scale, precision=precision, policy=policy)["ms"]
              for hw, prep in preps.items()}
        cost = frames.size_cost(lambda hw: ms[hw], sizes)
        plans = frames.tile_plans(cost, lr_hw, halo)
        out["profiles"][prof.name] = {"fixed_ms": round(cost.fixed_ms, 4), "ms_per_mpixel_lr": round(cost.per_pixel_ms * 1e6, 4),
                                      "plans": [p.to_json() | {"label": p.label()} for p in plans]}
    return out
