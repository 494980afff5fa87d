"""What `tools/upscale.py` does: flags -> `deploy.UpscaleConfig` -> `deploy.upscale`
(deploy/runtime/upscale.py; the pair itself is deploy/runtime/pair.py) -> image + report written."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from deploy.convert.sources import ModelSource
from deploy.runtime import adaptive
from deploy.runtime.pair import DEFAULT_CACHE  # noqa: F401 - tools/upscale.py's --cache_dir default
from deploy.runtime.upscale import UpscaleConfig, check_output, upscale


def upscale_file(src: ModelSource, policy_path: str, input_path: str, out: str, *, adaptive_on: bool = True,
                 tile: tuple[int, int] = (64, 64), blend: int = 4,
                 criterion_name: str = adaptive.DEFAULT_CRITERION, wide_fraction: Optional[float] = None,
                 threshold: Optional[float] = None, cache_dir: Optional[str | Path] = DEFAULT_CACHE,
                 calib_dir: Optional[str] = None, calib_images: int = 8, num_threads: int = 2,
                 overwrite: bool = False, progress: bool = True) -> dict:
    """Upscale one image file; writes `out` and `out.json` (the report) atomically, never over an
    input (the image, the policy, the calibration folder); returns the report."""
    config = UpscaleConfig(adaptive=adaptive_on, wide_fraction=wide_fraction, threshold=threshold,
                           criterion=criterion_name, tile=tile, blend=blend, cache_dir=cache_dir,
                           calib_dir=calib_dir, calib_images=calib_images, num_threads=num_threads)
    check_output(out, (input_path, policy_path, calib_dir), overwrite=overwrite)  # before the minute of building
    result = upscale(src, policy_path, input_path, config, progress=progress)
    result.save(out, overwrite=overwrite)
    return result.report_for(out)
