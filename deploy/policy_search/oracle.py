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

import time
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from deploy.data import calibration
from deploy.convert import per_layer as hybrid

from deploy.convert import quantizer
from deploy.data.io_convention import IOConvention
from deploy.convert.policy import Policy
from deploy.data.validation import SELECTION, ValidationSet, validation_set  # noqa: F401 - re-exported
from deploy.evaluation.runners import TFLiteRunner

Assignment = Mapping[str, str]  # layer -> precision


def assignment_key(a: Assignment, layers: Sequence[str]) -> tuple[str, ...]:
    return tuple(a[n] for n in layers)


from deploy.policy_search.config import BUDGET_ON  # noqa: E402,F401 - declared (and checked) with the config


class QualityOracle:
    """PSNR_Y of a per-layer assignment, measured on a real quantized model (cached).

    `psnr(a)` is what budgets bound: with `budget_on="mean"` the mean over validation images of
    PSNR_Y; with `"worst"` the reference's mean minus the worst image's loss against the
    reference (`reference`: "a16w8" or "float"), so `psnr(a) >= ref - budget` holds exactly when
    every validation image loses at most `budget` dB. `image_psnrs(a)` has the per-image values."""

    kind = "litert"

    def __init__(self, prep: hybrid.Prepared, *, model: str, scale: int,
                 calib: calibration.CalibrationSet, val: ValidationSet,
                 convention: IOConvention = IOConvention(),
                 on_eval: Optional[Callable[[Assignment, float], None]] = None,
                 qsv: Optional[dict] = None, budget_on: str = "mean", reference: str = "a16w8",
                 qsv_narrow: Optional[dict] = None, ptq: Optional[str] = None):
        """`qsv`: the calibration (min/max over `calib` when None); `qsv_narrow`: with search PTQ
        (quantizer.ptq_for_search), the ranges of activations on int8 grids, `qsv` then holding
        the others' (`qsv_for`); `ptq`: their label, recorded in every policy this oracle makes
        (converting it applies the same PTQ)."""
        self.prep, self.model, self.scale = prep, model, scale
        self.calib, self.val, self.convention, self.on_eval = calib, val, convention, on_eval
        self.layers = tuple(prep.layers)
        t = time.perf_counter()
        self.qsv = qsv if qsv is not None else quantizer.calibrate(prep.float_tflite, calib.patches)
        self.qsv_narrow, self.ptq = qsv_narrow, ptq
        self.calibration_seconds = time.perf_counter() - t
        self._cache: dict[tuple[str, ...], np.ndarray] = {}
        self._float_images: Optional[np.ndarray] = None
        self.eval_seconds = 0.0
        self.workers = 0  # interpreters the last measurement ran on (bench reports it)
        self.budget_on, self.reference = budget_on, reference

    @property
    def evaluations(self) -> int:
        """Distinct assignments built and measured so far."""
        return len(self._cache)

    def policy(self, a: Assignment, io_type: str = "float32") -> Policy:
        counts = {p: list(a.values()).count(p) for p in set(a.values())}
        default = max(sorted(counts), key=counts.get) if counts else "a8w8"
        return Policy(self.model, self.scale, default, tuple((n, a[n]) for n in self.layers), io_type,
                      ptq=self.ptq)

    def qsv_for(self, policy: Policy) -> dict:
        """The calibration `policy`'s model is quantized with (see `__init__`)."""
        return quantizer.merge_grids(self.prep, policy, self.qsv, self.qsv_narrow)

    def build(self, a: Assignment, *, smoke: bool = True) -> tuple[bytes, dict]:
        pol = self.policy(a)
        return hybrid.quantize_policy(self.prep, pol, self.calib, qsv=self.qsv_for(pol), smoke=smoke)

    def measure_images(self, tflite: bytes) -> np.ndarray:
        runner = TFLiteRunner(tflite, self.scale, convention=self.convention)
        self.workers = runner.workers
        return self.val.psnr_y_images(runner.map(self.val.lr), self.scale)

    def measure(self, tflite: bytes) -> float:
        return float(np.mean(self.measure_images(tflite)))

    def _measure_assignment(self, a: Assignment) -> np.ndarray:
        # invoked on every validation patch right away: a smoke invoke first would only repeat
        # one of them (EDSR-baseline x4 a16w8: ~6 s of int16 reference kernels)
        return self.measure_images(self.build(a, smoke=False)[0])

    def image_psnrs(self, a: Assignment) -> np.ndarray:
        """PSNR_Y per validation image of assignment `a` (cached)."""
        key = assignment_key(a, self.layers)
        if key not in self._cache:
            t = time.perf_counter()
            self._cache[key] = self._measure_assignment(a)
            self.eval_seconds += time.perf_counter() - t
            if self.on_eval:
                self.on_eval(a, self.score(self._cache[key]))
        return self._cache[key]

    def image_psnrs_many(self, assignments: Sequence[Assignment], evaluator=None) -> list[np.ndarray]:
        """PSNR_Y per validation image of each assignment, in order (cached like `image_psnrs`).

        The batch entry point for passes whose candidates do not depend on each other (the
        sensitivity drops and gains): an oracle may share work between them (the fast oracle
        reuses the activations the candidates have in common), and `evaluator` (a
        deploy/policy_search/parallel.py `Evaluator`: a process pool or a Dask cluster) may run
        the uncached ones elsewhere; without it they are measured here."""
        todo, seen = [], set()
        for a in assignments:
            key = assignment_key(a, self.layers)
            if key not in self._cache and key not in seen:
                seen.add(key)
                todo.append(a)
        if todo:
            t = time.perf_counter()
            measured = evaluator.measure(todo) if evaluator is not None else self.measure_uncached(todo)
            self.eval_seconds += time.perf_counter() - t
            for a, images in zip(todo, measured):
                self._cache[assignment_key(a, self.layers)] = images
                if self.on_eval:
                    self.on_eval(a, self.score(images))
        return [self._cache[assignment_key(a, self.layers)] for a in assignments]

    def measure_uncached(self, assignments: Sequence[Assignment]) -> list[np.ndarray]:
        """Per-image PSNRs of assignments not measured yet (no caching here); one at a time."""
        return [self._measure_assignment(a) for a in assignments]

    def _reference_images(self) -> np.ndarray:
        return self.float_images() if self.reference == "float" else self.image_psnrs(self.uniform("a16w8"))

    def score(self, images: np.ndarray) -> float:
        """What the budget bounds (see the class docstring) for per-image PSNRs `images`."""
        if self.budget_on == "mean":
            return float(np.mean(images))
        ref = self._reference_images()
        return float(np.mean(ref) - np.max(ref - images))

    def psnr(self, a: Assignment) -> float:
        return self.score(self.image_psnrs(a))

    def worst_loss(self, a: Assignment) -> dict:
        """The worst validation image's loss against the reference (dB) and which image."""
        ref, got = self._reference_images(), self.image_psnrs(a)
        i = int(np.argmax(ref - got))
        return {"image": self.val.images[i], "loss_db": round(float(ref[i] - got[i]), 4),
                "mean_loss_db": round(float(np.mean(ref) - np.mean(got)), 4)}

    def float_images(self) -> np.ndarray:
        if self._float_images is None:
            self._float_images = self._measure_float()
        return self._float_images

    def _measure_float(self) -> np.ndarray:
        return self.measure_images(self.prep.float_tflite)

    def float_psnr(self) -> float:
        """The float model's PSNR_Y (a reference, not a candidate: not counted in evaluations)."""
        return float(np.mean(self.float_images()))

    def uniform(self, precision: str) -> dict[str, str]:
        return {n: precision for n in self.layers}
