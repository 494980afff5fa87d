"""Judge candidate policies by real quality: build each one and measure PSNR_Y on held-out patches.

The search and the sensitivity pass call `QualityOracle.psnr` hundreds of times, so it
calibrates once (min/max do not depend on bit width), keeps one validation set of LR/HR patches
at the model's fixed input size (one interpreter call per patch, no tiling), and caches results
by assignment. Validation photos are never the evaluation images nor the calibration photos:
the shipped validation split (deploy/data/shipped.py; smooth and detailed photos, the SR
training's held-out ones) on every machine, or the user's `--val_dir`; nothing else is
substituted when one is missing.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from deploy.data import calibration

from deploy.data import images as data
from deploy.data import shipped
from deploy.provenance import images_sha256

from deploy.convert import per_layer as hybrid

from deploy.convert import quantizer as quantize
from deploy.data.io_convention import IOConvention
from deploy.data.metrics import mse_y, psnr_from_mse
from deploy.convert.policy import Policy
from deploy.evaluation.runners import TFLiteRunner

Assignment = Mapping[str, str]  # layer -> precision


@dataclasses.dataclass(frozen=True)
class ValidationSet:
    lr: tuple[np.ndarray, ...]  # uint8 RGB, exactly the model's input size
    hr: tuple[np.ndarray, ...]  # uint8 RGB, scale x larger
    images: tuple[str, ...]
    source: str

    image_of: tuple[int, ...]  # index into `images` for every patch
    sha256: str = ""  # deploy.provenance.images_sha256 of the HR photos used

    def psnr_y(self, sr: Sequence[np.ndarray], scale: int) -> float:
        """Mean over images of PSNR_Y over that image's patches together (MSE pooled), as
        evaluation does per image; a near-perfect flat patch cannot dominate the mean."""
        per_image = []
        for i in range(len(self.images)):
            idx = [k for k, j in enumerate(self.image_of) if j == i]
            mse = np.mean([mse_y(sr[k], self.hr[k], crop_border=scale) for k in idx])
            per_image.append(psnr_from_mse(float(mse)))
        return float(np.mean(per_image))

    def to_json(self) -> dict:
        return {"source": self.source, "images": list(self.images), "sha256": self.sha256,
                "patches": len(self.lr),
                "patch_hw": list(self.lr[0].shape[:2])}


def _val_images(scale: int, val_dir: Optional[str | Path], n_images: int) -> tuple[list, str]:
    """(name, HR, LR) triples from `val_dir`, else the shipped validation photos."""
    if val_dir:
        folder = data.require_folder(val_dir, "validation folder")
        samples = data.make_samples(data.load_folder(folder)[:n_images], scale)
        return [(s.name, s.hr, s.lr) for s in samples], str(val_dir)
    chosen = shipped.files("validation")[:n_images]
    return [(p.stem, *data.cached_pair(p, scale)) for p in chosen], shipped.source_label("validation")


def validation_set(scale: int, patch_hw: Sequence[int], *, val_dir: Optional[str | Path] = None,
                   n_images: int = 5, patches_per_image: int = 6, seed: int = 1) -> ValidationSet:
    """The most detailed of several random LR patches per photo (flat sky shows no error)."""
    images, source = _val_images(scale, val_dir, n_images)
    ph, pw = int(patch_hw[0]), int(patch_hw[1])
    rng = np.random.default_rng(seed)
    lrs, hrs, owner = [], [], []
    for i, (name, hr, lr) in enumerate(images):
        h, w = lr.shape[:2]
        if h < ph or w < pw:
            raise data.DataError(f"validation image {name} ({w}x{h} LR) is smaller than the model "
                                 f"input {pw}x{ph}")
        cands = [(int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1)))
                 for _ in range(patches_per_image * 4)]
        g = lr.astype(np.float32).mean(-1)
        energy = [float(np.abs(np.diff(g[y:y + ph, x:x + pw], axis=0)).mean()
                        + np.abs(np.diff(g[y:y + ph, x:x + pw], axis=1)).mean()) for y, x in cands]
        for k in np.argsort(energy)[::-1][:patches_per_image]:
            y, x = cands[k]
            lrs.append(lr[y:y + ph, x:x + pw])
            hrs.append(hr[y * scale:(y + ph) * scale, x * scale:(x + pw) * scale])
            owner.append(i)
    return ValidationSet(tuple(lrs), tuple(hrs), tuple(n for n, _, _ in images), source, tuple(owner),
                         images_sha256((n, hr) for n, hr, _ in images))


def assignment_key(a: Assignment, layers: Sequence[str]) -> tuple[str, ...]:
    return tuple(a[n] for n in layers)


class QualityOracle:
    """PSNR_Y of a per-layer assignment, measured on a real quantized model (cached)."""

    def __init__(self, prep: hybrid.Prepared, *, model: str, scale: int,
                 calib: calibration.CalibrationSet, val: ValidationSet,
                 convention: IOConvention = IOConvention(),
                 on_eval: Optional[Callable[[Assignment, float], None]] = None):
        self.prep, self.model, self.scale = prep, model, scale
        self.calib, self.val, self.convention, self.on_eval = calib, val, convention, on_eval
        self.layers = tuple(prep.layers)
        t = time.perf_counter()
        self.qsv = quantize.calibrate(prep.float_tflite, calib.patches)
        self.calibration_seconds = time.perf_counter() - t
        self._cache: dict[tuple[str, ...], float] = {}
        self._float_psnr: Optional[float] = None
        self.eval_seconds = 0.0
        self.workers = 0  # interpreters the last measurement ran on (bench reports it)

    @property
    def evaluations(self) -> int:
        """Distinct assignments built and measured so far."""
        return len(self._cache)

    def policy(self, a: Assignment, io_type: str = "float32") -> Policy:
        counts = {p: list(a.values()).count(p) for p in set(a.values())}
        default = max(sorted(counts), key=counts.get) if counts else "a8w8"
        return Policy(self.model, self.scale, default, tuple((n, a[n]) for n in self.layers), io_type)

    def build(self, a: Assignment) -> tuple[bytes, dict]:
        return hybrid.quantize_policy(self.prep, self.policy(a), self.calib, qsv=self.qsv)

    def measure(self, tflite: bytes) -> float:
        runner = TFLiteRunner(tflite, self.scale, convention=self.convention)
        self.workers = runner.workers
        return self.val.psnr_y(runner.map(self.val.lr), self.scale)

    def psnr(self, a: Assignment) -> float:
        key = assignment_key(a, self.layers)
        if key not in self._cache:
            t = time.perf_counter()
            self._cache[key] = self.measure(self.build(a)[0])
            self.eval_seconds += time.perf_counter() - t
            if self.on_eval:
                self.on_eval(a, self._cache[key])
        return self._cache[key]

    def float_psnr(self) -> float:
        """The float model's PSNR_Y (a reference, not a candidate: not counted in evaluations)."""
        if self._float_psnr is None:
            self._float_psnr = self.measure(self.prep.float_tflite)
        return self._float_psnr

    def uniform(self, precision: str) -> dict[str, str]:
        return {n: precision for n in self.layers}
