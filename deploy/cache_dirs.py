"""The one user cache directory: every cache the library keeps lives under it.

Why one place: caches used to sit in four (a `data_cache/` folder beside the installed package,
which a site-packages or read-only install cannot write, `~/.cache/srdeploy/upscale`, an
XDG qairt cache, bench folders). Now:

    $SRDEPLOY_CACHE_DIR                  when set (any path; `~` expanded)
    $XDG_CACHE_HOME/srdeploy             else, when XDG_CACHE_HOME is an absolute path
    ~/.cache/srdeploy                    else (the XDG default, as platformdirs on Linux)

Subfolders: `lr_x<scale>/` (bicubic LR of training/validation photos), `int8_route/` (int8
route decisions), `upscale/` (adaptive pairs), `qairt-<version>/` (NPU tool stubs),
`npu_numerics/` (bench/npu_numerics.py). Everything there is derived data keyed by content
hashes: deleting the folder only costs recomputation. Users' data sets (`--train_dir`,
`--benchmarks`, ...) are never looked for here: they are passed as paths. Pure (no TensorFlow).
"""
from __future__ import annotations

import os
from pathlib import Path

#: The environment variable that moves every cache.
ENV_VAR = "SRDEPLOY_CACHE_DIR"


def user_cache_dir() -> Path:
    """The cache root, read from the environment at each call (nothing is created here)."""
    own = os.environ.get(ENV_VAR, "").strip()
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "srdeploy"


def cache_dir(name: str) -> Path:
    """One cache's folder under the root, e.g. `cache_dir("upscale")`."""
    return user_cache_dir() / name
