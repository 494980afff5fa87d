"""What `tools/report.py` does: gather inputs (optional), render, and swap the folder in atomically.

The report is built in a hidden sibling folder and renamed over `--out` only when complete, so
a failed or interrupted run leaves the previous report (or nothing) in place.
"""
from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from typing import TYPE_CHECKING

from deploy._files import OutputExistsError
from deploy.convert import metadata
from deploy.errors import UserInputError
from deploy.report.inputs import MANIFEST, sha256_file

if TYPE_CHECKING:  # gather/render import TensorFlow and matplotlib; --inspect needs neither
    from deploy.report.gather import GatherOptions
    from deploy.report.render import Rendered
    from deploy.convert.sources import ModelSource


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputExistsError(f"out {out} is a file; give a folder for the report", option="out", file=out)
    if not overwrite:
        raise OutputExistsError(f"{out} exists; pass overwrite=True to replace it (or render_only=True to "
                                "redraw it)", file=out)
    if any(out.iterdir()) and not (out / "index.md").is_file() and not (out / "inputs").is_dir():
        raise OutputExistsError(f"{out} is not empty and is not a report folder; choose another out",
                                file=out)


def _swap(staging: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _staging(out: Path) -> Path:
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def build(src: "ModelSource", out: str | Path, opts: "GatherOptions", *, overwrite: bool = False,
          argv: Optional[Sequence[str]] = None, log=print) -> "Rendered":
    """Gather every input from `src` and the user's files, then render; `out` appears complete."""
    from deploy.report.gather import gather
    out = Path(out)
    _check_out(out, overwrite)
    t0 = time.perf_counter()

    def fill(staging: Path) -> None:
        manifest = gather(src, staging / "inputs", opts, log=log)
        args = list(argv or sys.argv)
        if args and Path(args[0]).parent.name == "tools":  # as run from the repository root
            args[0] = f"tools/{Path(args[0]).name}"
        cmd = "python " + " ".join(shlex.quote(a) for a in args)
        manifest["commands"].insert(0, f"# this report: {cmd}")
        manifest["gather_seconds"] = round(time.perf_counter() - t0, 1)
        (staging / "inputs" / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return _staged(out, fill)


def render_only(out: str | Path) -> "Rendered":
    """Redraw `out` from `out/inputs` (reproducibility: nothing is recomputed)."""
    out = Path(out)
    if not (out / "inputs").is_dir():
        raise UserInputError(f"{out}/inputs does not exist; build the report first (without render_only=True)",
                             file=out / "inputs")
    try:  # a corrupt manifest cannot say what the report is of: never replace a good report with it
        manifest = json.loads((out / "inputs" / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or not manifest.get("model") or not isinstance(manifest.get("scale"), int):
        from deploy.errors import UserInputError
        raise UserInputError(f"{out / 'inputs' / MANIFEST} is missing or corrupt (no model and scale); {out} was "
                             "left as it was: rebuild the report without --render_only")
    return _staged(out, lambda staging: shutil.copytree(out / "inputs", staging / "inputs"))


def _staged(out: Path, fill) -> "Rendered":
    """Fill a hidden staging folder, render it, then swap it in: `out` is whole or untouched."""
    from deploy.report.render import render
    staging = _staging(out)
    try:
        fill(staging)
        result = render(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap(staging, out)
    return _moved(result, staging, out)


def _moved(r: "Rendered", staging: Path, out: Path) -> "Rendered":
    from deploy.report.render import Rendered
    return Rendered(out / r.index.relative_to(staging), r.figures, r.skipped, r.sections, r.summary)


def inspect(path: str | Path) -> str:
    """The srdeploy metadata embedded in a .tflite, readable; MetadataError (one line) otherwise."""
    path = Path(path)
    meta = metadata.read(path)
    return f"{path} (sha256 {sha256_file(path)[:16]}, {path.stat().st_size / 1024:.1f} KiB)\n" + \
        metadata.format_metadata(meta)
