"""Run benchmark_model on a phone: push what changed, run one trial, hand back the raw log.

Why a Runner protocol: the session drives phones and the desktop fallback the same way, so
both write the same records. Parsing stays in parser.py (pure); this module only moves bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import shlex
from pathlib import Path
from typing import Protocol

from android_harness import errors, thermal, tflite_ops
from android_harness.config import QUERY_S, BenchConfig
from android_harness.device import Device, DeviceRef
from android_harness.parser import BenchStats

REMOTE_DIR = "/data/local/tmp/srdeploy"
TFLITE_IDENT = b"TFL3"


@dataclasses.dataclass(frozen=True)
class ModelFile:
    path: Path
    name: str
    sha256: str
    size_bytes: int
    npu_compiled: bool = False  # holds DISPATCH_OP nodes: runs only under --delegate npu

    def to_dict(self) -> dict:
        return {"path": str(self.path), "name": self.name, "sha256": self.sha256,
                "size_bytes": self.size_bytes}


def load_model(path: str | Path) -> ModelFile:
    """Check the file is a TFLite flatbuffer *before* touching any phone."""
    p = Path(path)
    if not p.is_file():
        raise errors.ModelInvalid(f"model {p} not found: check the path (convert one with "
                                  "tools/convert.py)")
    data = p.read_bytes()
    if len(data) < 8 or data[4:8] != TFLITE_IDENT:
        raise errors.ModelInvalid(f"model {p} is not a TFLite flatbuffer (no TFL3 identifier): "
                                  "re-export it with tf.lite.TFLiteConverter")
    return ModelFile(p, p.name, hashlib.sha256(data).hexdigest(), len(data),
                     tflite_ops.is_npu_compiled(data))


@dataclasses.dataclass(frozen=True)
class TrialOutput:
    """One benchmark run: the raw log and, when a runner measures itself, its stats."""

    log: str
    returncode: int
    command: str
    stats: BenchStats | None = None


class Runner(Protocol):
    backend: str

    def describe(self) -> dict: ...
    def prepare(self, models: list[ModelFile]) -> dict[str, int]: ...
    def thermal(self) -> thermal.ThermalSnapshot: ...
    def run_trial(self, model: ModelFile, config: BenchConfig,
                  timeout_s: float | None = None) -> TrialOutput: ...


class AndroidRunner:
    """benchmark_model on one phone under /data/local/tmp/srdeploy."""

    backend = "android-benchmark_model"

    def __init__(self, ref: DeviceRef, binary: Path, aliases: list[str],
                 remote_dir: str = REMOTE_DIR, npu_libs: tuple[Path, ...] = ()) -> None:
        self.ref, self.binary, self.aliases = ref, Path(binary), aliases
        self.device = Device(ref.host, ref.serial)
        self.remote_dir = remote_dir
        self.remote_bin = posixpath.join(remote_dir, "benchmark_model")
        # LiteRT's NPU dispatch library + the QNN libraries (--npu_dispatch_dir), pushed to one
        # phone folder that is --dispatch_library_path, LD_LIBRARY_PATH and ADSP_LIBRARY_PATH.
        self.npu_libs = tuple(Path(p) for p in npu_libs)
        self.remote_npu_dir = posixpath.join(remote_dir, "npu")

    def remote_model(self, model: ModelFile) -> str:
        # sha prefix: two models with one file name never overwrite each other on the phone.
        return posixpath.join(self.remote_dir, "models", f"{model.sha256[:12]}-{model.name}")

    def describe(self) -> dict:
        info = self.ref.info or self.device.getprops()
        label = self.aliases[0] if self.aliases else info.get("model") or self.ref.serial
        return {"serial": self.ref.serial, "host": self.ref.host.label, "label": label,
                "aliases": self.aliases, **info}

    def prepare(self, models: list[ModelFile]) -> dict[str, int]:
        """Push the binary and models whose remote sha256 differs; returns push counts."""
        dirs = [posixpath.join(self.remote_dir, "models")]
        dirs += [self.remote_npu_dir] if self.npu_libs else []
        r = self.device.shell(["mkdir", "-p", *dirs], timeout=QUERY_S)
        if r.returncode != 0:
            raise errors.PushError(f"{self.ref.serial}: cannot create {self.remote_dir}: "
                                   f"{(r.stderr or r.stdout).strip()}")
        wanted = [(self.binary, self.remote_bin, 0o755,
                   hashlib.sha256(self.binary.read_bytes()).hexdigest())]
        wanted += [(m.path, self.remote_model(m), 0o644, m.sha256) for m in models]
        wanted += [(lib, posixpath.join(self.remote_npu_dir, lib.name), 0o755,
                    hashlib.sha256(lib.read_bytes()).hexdigest()) for lib in self.npu_libs]
        remote = self.device.sha256([w[1] for w in wanted])
        counts = {"pushed": 0, "skipped": 0}
        for local, dst, mode, digest in wanted:
            if remote.get(dst) == digest:
                counts["skipped"] += 1
                continue
            self.device.push(local, dst, mode=mode)
            counts["pushed"] += 1
        r = self.device.shell(["chmod", "755", self.remote_bin], timeout=QUERY_S)
        if r.returncode != 0:  # e.g. /data/local/tmp mounted noexec on a locked-down build
            raise errors.PushError(f"{self.ref.serial}: cannot make {self.remote_bin} "
                                   f"executable: {(r.stderr or r.stdout).strip()}")
        return counts

    def thermal(self) -> thermal.ThermalSnapshot:
        return thermal.read(self.device)

    def command(self, model: ModelFile, config: BenchConfig) -> list[str]:
        argv = [self.remote_bin, f"--graph={self.remote_model(model)}", *config.flags()]
        if config.delegate == "qnn":  # QNN libs sit next to the delegate .so on the phone
            libdir = posixpath.dirname(config.external_delegate_path)
            argv = ["env", f"LD_LIBRARY_PATH={libdir}", f"ADSP_LIBRARY_PATH={libdir}", *argv]
        elif config.delegate == "npu":
            # As LiteRT's own CLI runs it on a phone (google-ai-edge/LiteRT-CLI
            # litert_cli/commands/benchmark/android.py @f778407530cb638219a67fc22b7d2bf78f5c8c30):
            # one folder is the dispatch dir and both library search paths (the QNN stub loads
            # from LD_LIBRARY_PATH, the Hexagon skel from ADSP_LIBRARY_PATH).
            d = self.remote_npu_dir
            argv = ["env", f"LD_LIBRARY_PATH={d}", f"ADSP_LIBRARY_PATH={d}", *argv,
                    f"--dispatch_library_path={d}"]
        return argv

    def run_trial(self, model: ModelFile, config: BenchConfig,
                  timeout_s: float | None = None) -> TrialOutput:
        argv = self.command(model, config)
        cmdline = shlex.join(argv) + " 2>&1"
        r = self.device.shell_raw(cmdline, timeout=timeout_s or config.bench_timeout_s())
        return TrialOutput(r.stdout + r.stderr, r.returncode, cmdline)
