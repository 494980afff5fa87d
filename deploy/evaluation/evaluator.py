"""PSNR_Y / SSIM_Y of an SR model on a set of HR images, with the bicubic baseline.

The JSON written by `EvalResult.to_json` is a public contract (scripts depend on it):
  {"mean": {"psnr_y", "ssim_y"}, "bicubic": {"psnr_y", "ssim_y"},
   "images": [{"name", "psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y"}, ...],
   ...plus "model", "scale", "convention", "dataset", "seconds", "output_megapixels_per_s",
   "provenance" (deploy/provenance.py: package versions, git commit, command, and the evaluation
   images with a hash of their pixels), and for a model converted in memory "conversion"
   ({"sha256", "precision", "int8_route"}: the very model `convert.py` writes for that source)}.
Every result carries its metric convention, so no PSNR travels without it.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from tqdm import tqdm

from deploy import provenance as _provenance
from deploy.data import metrics
from deploy.data.images import Sample
from deploy.data.imresize import bicubic_upscale
from deploy.evaluation.runners import SRRunner


@dataclasses.dataclass(frozen=True)
class ImageScore:
    name: str
    psnr_y: float
    ssim_y: float
    bicubic_psnr_y: float
    bicubic_ssim_y: float


@dataclasses.dataclass(frozen=True, repr=False)
class EvalResult:
    """PSNR_Y / SSIM_Y of one model on one image set, per image and mean, beside bicubic's, with
    the metric convention, timing and provenance: what `deploy.evaluate` returns.

    `to_json()` is the public evaluation JSON (module docstring), `save(path)` writes it and
    `table()` prints it; `mean` / `bicubic` are the averages."""
    model: str
    scale: int
    dataset: str
    images: tuple[ImageScore, ...]
    seconds: float  # model time only (runner calls), not metrics
    output_pixels: int
    provenance: Optional[Mapping[str, Any]] = dataclasses.field(default=None, compare=False)
    #: a model converted in memory: its sha256, precision and int8 route (api.conversion_summary)
    conversion: Optional[Mapping[str, Any]] = dataclasses.field(default=None, compare=False)
    #: the `deploy.EvalConfig` it was made with (`EvalConfig.to_json`), as `deploy.quantize`'s report
    config: Optional[Mapping[str, Any]] = dataclasses.field(default=None, compare=False)

    @property
    def mean(self) -> dict[str, float]:
        return {"psnr_y": float(np.mean([i.psnr_y for i in self.images])),
                "ssim_y": float(np.mean([i.ssim_y for i in self.images]))}

    @property
    def bicubic(self) -> dict[str, float]:
        return {"psnr_y": float(np.mean([i.bicubic_psnr_y for i in self.images])),
                "ssim_y": float(np.mean([i.bicubic_ssim_y for i in self.images]))}

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "scale": self.scale, "dataset": self.dataset,
            "convention": {**metrics.CONVENTION, "crop_border": self.scale},
            "mean": _round(self.mean), "bicubic": _round(self.bicubic),
            "images": [_round(dataclasses.asdict(i)) for i in self.images],
            "seconds": round(self.seconds, 3),
            "output_megapixels_per_s": round(self.output_pixels / 1e6 / max(self.seconds, 1e-9), 3),
            **({"provenance": dict(self.provenance)} if self.provenance is not None else {}),
            **({"conversion": dict(self.conversion)} if self.conversion is not None else {}),
            **({"config": dict(self.config)} if self.config is not None else {}),
        }

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        m = self.mean
        return brief_repr(self, model=self.model, scale=self.scale, dataset=self.dataset,
                          psnr_y=round(m["psnr_y"], 4), ssim_y=round(m["ssim_y"], 4),
                          bicubic_psnr_y=round(self.bicubic["psnr_y"], 4), images=len(self.images),
                          seconds=round(self.seconds, 3))

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write `to_json()` at `path`, atomically (an existing file only with `overwrite`)."""
        write_json(self, path, overwrite=overwrite)
        return Path(path)

    def table(self) -> str:
        rows = [f"{'image':<24}{'PSNR_Y':>9}{'SSIM_Y':>9}{'bicubic':>9}"]
        rows += [f"{i.name:<24}{i.psnr_y:9.2f}{i.ssim_y:9.4f}{i.bicubic_psnr_y:9.2f}" for i in self.images]
        m, b = self.mean, self.bicubic
        rows.append(f"{'mean':<24}{m['psnr_y']:9.2f}{m['ssim_y']:9.4f}{b['psnr_y']:9.2f}")
        return "\n".join(rows)


def _round(d: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def evaluate(runner: SRRunner, samples: Sequence[Sample], *, model: str, dataset: str,
             progress: bool = True) -> EvalResult:
    """Scores every sample; a runner with several interpreters (`map`) takes `workers` images at
    a time, so small images that fit one tile still keep every core busy."""
    scale = runner.scale
    scores, seconds, pixels = [], 0.0, 0
    batch = getattr(runner, "workers", 1)
    bar = tqdm(total=len(samples), desc=f"evaluating {model}", disable=not progress, leave=False)
    for i in range(0, len(samples), batch):
        chunk = samples[i:i + batch]
        t = time.perf_counter()
        srs = runner.map([s.lr for s in chunk]) if batch > 1 else [runner(s.lr) for s in chunk]
        seconds += time.perf_counter() - t
        for s, sr in zip(chunk, srs):
            pixels += sr.shape[0] * sr.shape[1]
            bic = bicubic_upscale(s.lr, scale)
            scores.append(ImageScore(
                s.name, metrics.psnr(sr, s.hr, crop_border=scale), metrics.ssim(sr, s.hr, crop_border=scale),
                metrics.psnr(bic, s.hr, crop_border=scale), metrics.ssim(bic, s.hr, crop_border=scale)))
        bar.update(len(chunk))
    bar.close()
    prov = _provenance.collect(
        {"evaluation": _provenance.dataset_json(dataset, [(s.name, s.hr) for s in samples])})
    return EvalResult(model, scale, dataset, tuple(scores), seconds, pixels, prov)


def write_json(result: EvalResult, path: str | Path, *, overwrite: bool = True) -> None:
    """`overwrite=False`: refused atomically if `path` appeared meanwhile (another run)."""
    from deploy._files import atomic_write, dumps_json
    atomic_write(path, dumps_json(result.to_json(), indent=2) + "\n", overwrite=overwrite)
