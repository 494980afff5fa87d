"""The adaptive pair: one source's fast (policy) and wide (all-a16w8) models at one tile size.

Both models are quantized from ONE calibration (min/max do not depend on bit width), at one
fixed LR tile size, so the only difference between the two paths is precision. Building takes
a minute; the two .tflite files are cached under `cache_dir/<key>/`, the key hashing the
model's weights and architecture, the policy, the tile size and the calibration settings, so a
second run with the same inputs starts in seconds. `deploy.upscale` (deploy/runtime/upscale.py,
behind `tools/upscale.py`) and `bench/adaptive.py` use it; routing tiles between the two is
deploy/runtime/adaptive.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from deploy import cache_dirs
from deploy._files import atomic_write
from deploy.convert import per_layer
from deploy.convert import quantizer
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource
from deploy.data import calibration

CACHE_VERSION = 1
#: The user cache's `upscale/` (deploy/cache_dirs.py; SRDEPLOY_CACHE_DIR read at import).
DEFAULT_CACHE = cache_dirs.cache_dir("upscale")


@dataclasses.dataclass(frozen=True)
class ModelPair:
    """The fast (policy) and wide (all-a16w8) models of one source at one tile size."""
    fast: bytes
    wide: bytes
    tile: tuple[int, int]
    margin: int  # ceil(receptive radius), LR pixels
    key: str
    cached: bool  # loaded from the cache rather than built


def cache_key(src: ModelSource, policy: Policy, tile: tuple[int, int], calib_dir: Optional[str],
              calib_images: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "model": src.name, "scale": src.scale, "tile": list(tile),
                         "convention": dataclasses.asdict(src.convention), "policy": policy.to_json(),
                         "calib_dir": str(calib_dir) if calib_dir else None, "calib_images": calib_images,
                         "arch": src.model.to_json() if src.model is not None else src.framework},
                        sort_keys=True, default=str).encode())
    for w in src.model.get_weights() if src.model is not None else []:
        h.update(np.ascontiguousarray(w).tobytes())
    if src.model is None:  # a float TFLite (its bytes) or an exported SavedModel (its files)
        files = sorted(Path(src.weights).rglob("*")) if src.framework == "saved_model" else []
        for blob in [src.tflite or b""] + [f.read_bytes() for f in files if f.is_file()]:
            h.update(hashlib.sha256(blob).digest())
    return h.hexdigest()[:16]


def quantize_pair(prep: per_layer.Prepared, src: ModelSource, policy: Policy, *, calib_dir: Optional[str] = None,
                  calib_images: int = 8) -> tuple[bytes, bytes, dict, calibration.CalibrationSet]:
    """(fast, wide, fast's report, calibration): one calibration, two verified models."""
    policy.validate(prep.layers)  # before calibrating
    tile = tuple(prep.input_shape[1:3])
    calib = calibration.calibration_set(src.scale, tile, calib_dir=calib_dir, n_images=calib_images,
                                        convention=src.convention)
    qsv = quantizer.calibrate(prep.float_tflite, calib.patches)
    peak = src.convention.peak
    fast, report = per_layer.quantize_policy(prep, policy, calib, qsv=qsv, value_peak=peak)
    wide, _ = per_layer.quantize_policy(prep, Policy(src.name, src.scale, "a16w8", io_type=policy.io_type),
                                     calib, qsv=qsv, value_peak=peak)
    return fast, wide, report, calib


def build_pair(src: ModelSource, policy: Policy, tile: tuple[int, int], *, calib_dir: Optional[str] = None,
               calib_images: int = 8, cache_dir: Optional[str | Path] = DEFAULT_CACHE) -> ModelPair:
    """Both models, from the cache when present; nothing partial is ever left in the cache."""
    policy.validate(model=src.name, scale=src.scale)
    key = cache_key(src, policy, tile, calib_dir, calib_images)
    folder = Path(cache_dir) / key if cache_dir else None
    if folder and (folder / "meta.json").is_file():
        meta = json.loads((folder / "meta.json").read_text())
        return ModelPair((folder / "fast.tflite").read_bytes(), (folder / "wide.tflite").read_bytes(),
                         tile, int(meta["margin_lr"]), key, True)
    prep = per_layer.prepare_source(src, tile)
    tile = tuple(prep.input_shape[1:3])  # a float TFLite keeps its own size
    fast, wide, report, calib = quantize_pair(prep, src, policy, calib_dir=calib_dir, calib_images=calib_images)
    margin = math.ceil(prep.receptive_radius)
    if folder:
        atomic_write(folder / "fast.tflite", fast)
        atomic_write(folder / "wide.tflite", wide)
        atomic_write(folder / "meta.json", json.dumps({
            **src.to_json(), "policy": policy.to_json(), "policy_sha256": report["policy_sha256"],
            "tile_lr": list(tile), "margin_lr": margin, "calibration": calib.to_json()}, indent=2) + "\n")
    return ModelPair(fast, wide, tile, margin, key, False)
