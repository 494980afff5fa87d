"""What a result was made from: the `"provenance"` block of every result JSON.

    {"srdeploy": "0.1.0", "command": [...sys.argv], "git": {"commit", "dirty"} | None,
     "packages": {"tensorflow": "2.21.0", ...}, "data": {"calibration": {"source", "images",
     "sha256", ...}, "validation": ..., "evaluation": ...}}

Pure apart from reading installed package metadata and asking git (both cached per process):
outside a git checkout, or without git, `git` is None, never an error. Data sets are described
by their owners (`CalibrationSet.to_json()`, `ValidationSet.to_json()`, `dataset_json`), which
carry the image names and a hash of the pixels (`images_sha256`).
"""
from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
#: Distributions whose versions change numbers; the first installed name of each entry is used
#: (the quantizer may be renamed litert-quantizer; TF may be tensorflow or tensorflow-cpu).
PACKAGES: tuple[tuple[str, ...], ...] = (
    ("tensorflow", "tensorflow-cpu"),
    ("tf-keras",),
    ("ai-edge-litert", "ai-edge-litert-nightly"),
    ("ai-edge-quantizer", "litert-quantizer", "ai-edge-quantizer-nightly"),
    ("tensorflow-model-optimization",),
    ("onnxruntime-qnn",),
    ("numpy",),
)


def package_version(dist: str, default: Optional[str] = None) -> Optional[str]:
    """An installed distribution's version, or `default` when it is not installed: the one
    package-version lookup of the library (reports, cache keys, model metadata)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return default


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """name -> version of each installed package in PACKAGES (absent ones are left out)."""
    out = {}
    for names in PACKAGES:
        for name in names:
            v = package_version(name)
            if v is not None:
                out[name] = v
                break
    return out


def srdeploy_version() -> Optional[str]:
    return package_version("srdeploy")


@functools.lru_cache(maxsize=4)
def git_state(repo: Path = REPO) -> Optional[dict[str, Any]]:
    """{"commit": sha, "dirty": bool} of the checkout srdeploy runs from; None when it is not a
    git checkout (an installed wheel) or git is unavailable."""
    def git(*args: str) -> Optional[str]:
        try:
            proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                  timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout if proc.returncode == 0 else None

    if not (repo / ".git").exists():
        return None
    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def images_sha256(images: Iterable[tuple[str, Any]]) -> str:
    """One hash for a set of images: names, shapes and decoded pixels, in order. The same pixels
    give the same hash on any machine, whatever file format they came from."""
    import numpy as np
    h = hashlib.sha256()
    for name, img in images:
        a = np.ascontiguousarray(img)
        h.update(f"{name}\0{a.dtype.str}\0{'x'.join(map(str, a.shape))}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def dataset_json(source: str, images: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """A data-source entry for named HR arrays (e.g. the evaluation set)."""
    return {"source": source, "images": [n for n, _ in images], "sha256": images_sha256(images)}


def collect(data: Optional[Mapping[str, Optional[Mapping[str, Any]]]] = None, *,
            argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """The provenance block. `data`: role ("calibration", "validation", "evaluation", ...) ->
    that set's JSON (source, images, sha256); None entries (no calibration for float) dropped."""
    return {
        "srdeploy": srdeploy_version(),
        "command": list(sys.argv if argv is None else argv),
        "git": git_state(),
        "packages": package_versions(),
        "data": {k: dict(v) for k, v in (data or {}).items() if v is not None},
    }


def with_provenance(report: Mapping[str, Any], **data: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """`report` plus its `"provenance"` block; the data sets default to the report's own
    `"calibration"` / `"validation"` entries (a conversion or search report carries them)."""
    sets = {k: report.get(k) for k in ("calibration", "validation") if isinstance(report.get(k), Mapping)}
    return {**report, "provenance": collect({**sets, **data})}
