"""What `tools/upscale.py` does: build (or load) the fast hybrid and wide a16w8 models
(deploy/runtime/pair.py), upscale one image file, write it and its report."""
from __future__ import annotations

from deploy.errors import UserInputError

import io
import time
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from deploy._files import atomic_write, check_outputs, check_writable, dumps_json
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource
from deploy.data import images
from deploy.evaluation.runners import TFLiteRunner
from deploy.runtime import adaptive
from deploy.runtime.pair import (CACHE_VERSION, DEFAULT_CACHE, ModelPair, build_pair,  # noqa: F401 - tools/upscale.py
                                 cache_key, quantize_pair)


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
    if out.suffix.lower() not in images.IMAGE_SUFFIXES:
        raise UserInputError(f"--out {out}: unknown image type '{out.suffix}'; use .png (or "
                         f"{', '.join(sorted(images.IMAGE_SUFFIXES - {'.png'}))})")
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
    if in_p.suffix.lower() not in images.IMAGE_SUFFIXES:  # as evaluate and convert: no GIF (animated, palette)
        raise UserInputError(f"--input {in_p}: '{in_p.suffix}' is not a supported image type; use "
                             f"{', '.join(sorted(images.IMAGE_SUFFIXES))}")
    _check_out(out_p, in_p, overwrite, policy_path, calib_dir)
    check_cache_dir(cache_dir)
    lr = images.load_image(in_p, orient=True)  # EXIF rotation applied: the output is oriented as the photo is viewed
    alpha_dropped = images.has_alpha(in_p)
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
