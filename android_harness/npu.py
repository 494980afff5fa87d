"""LiteRT NPU dispatch: what `--delegate npu` needs on the phone, checked before any phone.

Why: a model from `tools/npu_compile.py` holds its NPU partitions as DISPATCH_OP custom ops
(QNN context binaries). Only LiteRT's runtime with the vendor's dispatch library runs them:
on a Qualcomm phone `libLiteRtDispatch_Qualcomm.so` plus QAIRT's HTP libraries for the phone's
Hexagon version (how LiteRT's CLI lays them out: google-ai-edge/LiteRT-CLI
litert_cli/core/npu_utils.py @e91d2a913951b0bdf36294a69329f82fae601fb2). Neither is
downloaded at run time; the user names a folder holding them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from android_harness import errors

DISPATCH_ENV = "SRDEPLOY_NPU_DISPATCH_DIR"
DISPATCH_LIB = "libLiteRtDispatch_Qualcomm.so"
QNN_LIBS = ("libQnnHtp.so", "libQnnSystem.so")
_STUB = re.compile(r"libQnnHtpV(\d+)Stub\.so")
_SKEL = re.compile(r"libQnnHtpV(\d+)Skel\.so")

WHERE = ("LiteRT's Qualcomm dispatch library (libLiteRtDispatch_Qualcomm.so, arm64-v8a, from "
         "the LiteRT release's litert_npu_runtime_libraries or the ai-edge-litert-sdk-qualcomm "
         "package) and, from Qualcomm's QAIRT SDK (lib/aarch64-android, lib/hexagon-vNN/unsigned),"
         " libQnnHtp.so, libQnnSystem.so, libQnnHtpVNNStub.so and libQnnHtpVNNSkel.so for the "
         "phone's Hexagon version (v75 = SM8650, v73 = SM8550, v79 = SM8750)")
HELP = (f"--delegate npu needs a folder holding {WHERE}; pass it with --npu_dispatch_dir=DIR or "
        f"${DISPATCH_ENV} (see docs/HARNESS.md)")


def dispatch_libs(flag: Path | None) -> tuple[Path, ...]:
    """The files of the dispatch folder, checked for what LiteRT's Qualcomm dispatch loads."""
    d = flag or (Path(os.environ[DISPATCH_ENV]) if os.environ.get(DISPATCH_ENV) else None)
    if d is None:
        raise errors.NpuSetupError("no NPU dispatch libraries: " + HELP)
    if not d.is_dir():
        raise errors.NpuSetupError(f"NPU dispatch folder {d} not found: " + HELP)
    files = tuple(sorted(p for p in d.iterdir() if p.is_file() and ".so" in p.name))
    names = {p.name for p in files}
    missing = [n for n in (DISPATCH_LIB, *QNN_LIBS) if n not in names]
    stubs = {m.group(1) for n in names if (m := _STUB.fullmatch(n))}
    skels = {m.group(1) for n in names if (m := _SKEL.fullmatch(n))}
    if not stubs & skels:
        missing.append("a matching libQnnHtpVNNStub.so + libQnnHtpVNNSkel.so pair")
    if missing:
        raise errors.NpuSetupError(f"NPU dispatch folder {d} lacks {', '.join(missing)}: "
                                   + HELP)
    return files


def check_jobs(models, configs) -> None:
    """A compiled model runs only under --delegate npu, and --delegate npu only runs one."""
    for m in models:
        for c in configs:
            if m.npu_compiled and c.delegate != "npu":
                raise errors.NpuSetupError(
                    f"{m.name} is compiled for a phone NPU (DISPATCH_OP nodes) and cannot run "
                    f"with --delegate {c.delegate}: use --delegate npu, or benchmark the model "
                    "it was compiled from")
            if c.delegate == "npu" and not m.npu_compiled:
                raise errors.NpuSetupError(
                    f"{m.name} is not compiled for an NPU (no DISPATCH_OP nodes): compile it "
                    "first with tools/npu_compile.py --tflite M --soc SOC --out DIR and "
                    "benchmark DIR/<name>_qualcomm_<SOC>.tflite")
