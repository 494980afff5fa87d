"""Judge candidates on the NPU's own arithmetic: compiled for the target SoC, run in QNN HTP emulation.

Why: the search's budget is a PSNR the user will see on the phone. LiteRT's CPU kernels and
Qualcomm's HTP round differently (requantization, PReLU's MUL/ADD chain: FSRCNN x3 int8 scores
0.3 dB higher emulated than on the CPU on the validation patches, ReLU nets agree within
0.003 dB), so with an NPU target (`--npu qualcomm:SM8650`) the reference, the answer and the
candidates near the target are measured here (`--numerics npu`, the default with `--npu`).

`EmulatedJudge` is a `QualityOracle` whose models are compiled (deploy.npu, cached by sha256)
and run by `NpuEmulator` (NPU partitions emulated, any CPU ops on LiteRT): one emulator per
worker, reused for every patch. Emulation is compute-bound (~0.1-0.3 s per 64x64 patch for
FSRCNN), so per-image PSNRs are also kept on disk (`cache_dir`, keyed by model sha256, SoC,
validation set and library versions): a rerun of a search, or a search after its
`--sensitivity` run, emulates nothing twice.
"""
from __future__ import annotations

import hashlib
import json
import threading
from deploy.provenance import package_version
from pathlib import Path
from typing import Any, Optional

import numpy as np

from deploy._files import atomic_write, sha256_bytes
from deploy.evaluation.runners import TFLiteRunner, available_cores
from deploy.policy_search.oracle import QualityOracle

from deploy.policy_search.config import NUMERICS  # noqa: E402,F401 - declared (and checked) with the config
_VERSIONS = ("onnxruntime-qnn", "ai-edge-litert")


def resolve_numerics(numerics: str, npu_target: Optional[str]) -> str:
    """"cpu" or "npu" for a search ("auto": "npu" when it has an NPU target). The value and the
    combination were checked by `SearchConfig`."""
    if numerics == "auto":
        return "npu" if npu_target else "cpu"
    return numerics


def numerics_label(numerics: str, soc_name: Optional[str] = None) -> str:
    """What a report says its PSNRs were computed with."""
    return f"{soc_name} NPU (QNN HTP emulation)" if numerics == "npu" else "CPU (LiteRT kernels)"


class EmulatedJudge(QualityOracle):
    """A `QualityOracle` measuring every model on the target NPU's emulated arithmetic."""

    kind = "npu-emulated"

    def __init__(self, prep, *, soc: Any, cache_dir: Optional[str | Path] = None, qsv: Optional[dict] = None, **kw):
        super().__init__(prep, qsv=qsv, **kw)
        from deploy.npu import resolve_soc
        self.soc = soc if hasattr(soc, "htp_arch") else resolve_soc(str(soc))
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._compiled: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.emulated_seconds = 0.0
        self.emulated_models = 0  # models actually emulated (not read from the disk cache)
        #: what a worker process needs to rebuild this judge (parallel.OracleSpec)
        self.spec_extra = {"soc": self.soc.name, "cache_dir": cache_dir}

    @property
    def numerics(self) -> str:
        return numerics_label("npu", self.soc.name)

    def compiled(self, tflite: bytes) -> bytes:
        """`tflite` compiled for the SoC (once per model bytes)."""
        from deploy import npu
        key = sha256_bytes(tflite)
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = npu.compiled_for(tflite, self.soc)[0]
            return self._compiled[key]

    def _cache_file(self, tflite: bytes) -> Optional[Path]:
        if self.cache_dir is None:
            return None
        versions = {}
        for pkg in _VERSIONS:
            versions[pkg] = package_version(pkg)
        key = json.dumps({"model": sha256_bytes(tflite), "soc": self.soc.name, "scale": self.scale,
                          "validation": self.val.to_json(), "convention": [self.convention.channels,
                                                                           self.convention.value_range],
                          "versions": versions}, sort_keys=True)
        return self.cache_dir / f"emulated-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"

    def measure_images(self, tflite: bytes) -> np.ndarray:
        """Per-image PSNR_Y of `tflite` as the NPU computes it (disk-cached when `cache_dir`)."""
        import time
        path = self._cache_file(tflite)
        if path is not None and path.is_file():
            try:
                return np.asarray(json.loads(path.read_text())["psnr_y_images"], np.float64)
            except (ValueError, KeyError):
                pass  # a torn or foreign file: measure again and replace it
        from deploy.npu import NpuEmulator
        blob = self.compiled(tflite)
        t = time.perf_counter()
        runner = TFLiteRunner(tflite, self.scale, convention=self.convention, workers=available_cores(),
                              interpreter_factory=lambda _m, _n: NpuEmulator(blob, self.soc))
        self.workers = runner.workers
        images = self.val.psnr_y_images(runner.map(self.val.lr), self.scale)
        self.emulated_seconds += time.perf_counter() - t
        self.emulated_models += 1
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps({"soc": self.soc.name, "model_sha256": sha256_bytes(tflite),
                                           "psnr_y_images": [float(v) for v in images]}).encode(),
                         overwrite=True)
        return images
