"""What `tools/upscale.py` does: build (or load) the fast hybrid and wide a16w8 models, upscale.

Both models are quantized from ONE calibration (min/max do not depend on bit width), at one
fixed LR tile size, so the only difference between the two paths is precision. Building takes
a minute; the two .tflite files are cached under `cache_dir/<key>/`, the key hashing the
model's weights and architecture, the policy, the tile size and the calibration settings, so a
second run with the same inputs starts in seconds.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
import hashlib
import io
import json
import math
import time
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from deploy.runtime import adaptive

from deploy.data import calibration

from deploy.data import images as data

from deploy.convert import per_layer as hybrid

from deploy.convert import quantizer as quantize
from deploy.commands.jobs import atomic_write
from deploy._files import check_outputs, check_writable, dumps_json
from deploy.convert.policy import Policy
from deploy.evaluation.runners import TFLiteRunner
from deploy.convert.sources import ModelSource
from models.complexity import receptive_radius

CACHE_VERSION = 1
DEFAULT_CACHE = Path.home() / ".cache" / "srdeploy" / "upscale"


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


def quantize_pair(prep: hybrid.Prepared, src: ModelSource, policy: Policy, *, calib_dir: Optional[str] = None,
                  calib_images: int = 8) -> tuple[bytes, bytes, dict, calibration.CalibrationSet]:
    """(fast, wide, fast's report, calibration): one calibration, two verified models."""
    policy.validate(prep.layers)  # before calibrating
    tile = tuple(prep.input_shape[1:3])
    calib = calibration.calibration_set(src.scale, tile, calib_dir=calib_dir, n_images=calib_images,
                                        convention=src.convention)
    qsv = quantize.calibrate(prep.float_tflite, calib.patches)
    peak = src.convention.peak
    fast, report = hybrid.quantize_policy(prep, policy, calib, qsv=qsv, value_peak=peak)
    wide, _ = hybrid.quantize_policy(prep, Policy(src.name, src.scale, "a16w8", io_type=policy.io_type),
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
    prep = hybrid.prepare_source(src, tile)
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


def check_cache_dir(cache_dir: Optional[str | Path]) -> None:
    """--cache_dir must be a folder we can write (or create), said before the minute of building."""
    if not cache_dir:
        return
    d = Path(cache_dir)
    if d.exists() and not d.is_dir():
        raise UserInputError(f"--cache_dir {d} is a file, not a folder; pass a folder (or '' for no cache)")
    check_writable(d)


def _check_out(out: Path, input_path: Path, overwrite: bool, policy_path: Optional[str] = None,
               calib_dir: Optional[str] = None) -> None:
    if out.suffix.lower() not in data.IMAGE_SUFFIXES:
        raise UserInputError(f"--out {out}: unknown image type '{out.suffix}'; use .png (or "
                         f"{', '.join(sorted(data.IMAGE_SUFFIXES - {'.png'}))})")
    check_outputs((out, out.with_suffix(".json")), (input_path, policy_path, calib_dir), overwrite=overwrite)


def encode_image(img: np.ndarray, suffix: str) -> bytes:
    buf = io.BytesIO()
    fmt = Image.registered_extensions()[suffix.lower()]
    Image.fromarray(img).save(buf, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def upscale_file(src: ModelSource, policy_path: str, input_path: str, out: str, *, adaptive_on: bool = True,
                 tile: tuple[int, int] = (64, 64), blend: int = 4,
                 criterion_name: str = adaptive.DEFAULT_CRITERION, wide_fraction: Optional[float] = None,
                 threshold: Optional[float] = None, cache_dir: Optional[str | Path] = DEFAULT_CACHE,
                 calib_dir: Optional[str] = None, calib_images: int = 8, num_threads: int = 2,
                 overwrite: bool = False, progress: bool = True) -> dict:
    """Upscale one image file; writes `out` and `out.json` (the report) atomically."""
    t0 = time.perf_counter()
    out_p, in_p = Path(out), Path(input_path)
    if in_p.suffix.lower() not in data.IMAGE_SUFFIXES:  # as evaluate and convert: no GIF (animated, palette)
        raise UserInputError(f"--input {in_p}: '{in_p.suffix}' is not a supported image type; use "
                             f"{', '.join(sorted(data.IMAGE_SUFFIXES))}")
    _check_out(out_p, in_p, overwrite, policy_path, calib_dir)
    check_cache_dir(cache_dir)
    lr = data.load_image(in_p, orient=True)  # EXIF rotation applied: the output is oriented as the photo is viewed
    alpha_dropped = data.has_alpha(in_p)
    if alpha_dropped and progress:
        print(f"note: {in_p.name} has an alpha channel; it is dropped (the SR image is RGB)", flush=True)
    adaptive.criterion(criterion_name)
    if adaptive_on and wide_fraction is None and threshold is None:
        wide_fraction = 0.25
    if adaptive_on:
        adaptive.route(np.zeros((1, 1)), wide_fraction=wide_fraction, threshold=threshold)  # checks the flags
    policy = Policy.load(policy_path)
    policy.validate(model=src.name, scale=src.scale)
    if progress:  # stdout: stderr stays one line on error
        print(f"{in_p.name}: {lr.shape[1]}x{lr.shape[0]} -> {lr.shape[1] * src.scale}x{lr.shape[0] * src.scale}; "
              "building or loading the models...", flush=True)
    pair = build_pair(src, policy, tile, calib_dir=calib_dir, calib_images=calib_images, cache_dir=cache_dir)
    t_built = time.perf_counter()
    fast = TFLiteRunner(pair.fast, src.scale, num_threads=num_threads, convention=src.convention)
    wide = TFLiteRunner(pair.wide, src.scale, num_threads=num_threads, convention=src.convention) if adaptive_on else None
    from tqdm import tqdm
    with tqdm(desc=f"upscaling {in_p.name}", unit="tile", disable=not progress, mininterval=1.0) as bar:
        def on_tile(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        res = adaptive.upscale(lr, fast.invoke, wide.invoke if wide else None, tile=tile, scale=src.scale,
                               margin=pair.margin, blend=blend, criterion_name=criterion_name,
                               wide_fraction=wide_fraction, threshold=threshold, convention=src.convention,
                               on_tile=on_tile)
    report = {**src.to_json(), "input": str(in_p), "output": str(out_p),
              "input_hw": list(lr.shape[:2]), "output_hw": list(res.sr.shape[:2]), "alpha_dropped": alpha_dropped,
              "policy": policy.to_json(), "adaptive": adaptive_on,
              "criterion": criterion_name if adaptive_on else None,
              "wide_fraction_requested": wide_fraction if adaptive_on else None,
              "threshold": threshold if adaptive_on else None,
              "models": {"key": pair.key, "cached": pair.cached, "cache_dir": str(cache_dir) if cache_dir else None,
                         "build_seconds": round(t_built - t0, 2)},
              **res.summary(), "total_seconds": round(time.perf_counter() - t0, 2)}
    atomic_write(out_p, encode_image(res.sr, out_p.suffix), overwrite=overwrite)
    atomic_write(out_p.with_suffix(".json"), dumps_json(report, indent=2) + "\n", overwrite=overwrite)
    return report
