"""Validation patches: held-out LR/HR patches at a model's fixed input size, stratified by detail.

The search judges candidate policies on them and `--precision int8` chooses its route on them
(deploy/evaluation/int8_route.py), so both stand on the same patches. Validation photos are never
the evaluation images nor the calibration photos: the shipped validation split
(deploy/data/shipped.py) on every machine, or the user's `--val_dir`; nothing else is substituted
when one is missing.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from deploy.data import images as image_io
from deploy.data import shipped
from deploy.data.calibration import MIN_LR_SIDE, mirror_to
from deploy.data.imresize import bicubic_lr
from deploy.data.metrics import mse_y, psnr_from_mse
from deploy.provenance import images_sha256


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
        return float(np.mean(self.psnr_y_images(sr, scale)))

    def psnr_y_images(self, sr: Sequence[np.ndarray], scale: int) -> np.ndarray:
        """PSNR_Y of every validation image (its patches' MSE pooled), in `images` order."""
        per_image = []
        for i in range(len(self.images)):
            idx = [k for k, j in enumerate(self.image_of) if j == i]
            mse = np.mean([mse_y(sr[k], self.hr[k], crop_border=scale) for k in idx])
            per_image.append(psnr_from_mse(float(mse)))
        return np.asarray(per_image, np.float64)

    def to_json(self) -> dict:
        return {"source": self.source, "images": list(self.images), "sha256": self.sha256,
                "patches": len(self.lr), "selection": SELECTION,
                "patch_hw": list(self.lr[0].shape[:2])}


def _val_images(scale: int, val_dir: Optional[str | Path], n_images: int) -> tuple[list, str]:
    """(name, HR, LR) triples from `val_dir`, else the shipped validation photos."""
    if val_dir:
        folder = image_io.require_folder(val_dir, "validation folder")
        samples = image_io.make_samples(image_io.load_folder(folder)[:n_images], scale)
        return [(s.name, s.hr, s.lr) for s in samples], str(val_dir)
    chosen = shipped.files("validation")[:n_images]
    return [(p.stem, *image_io.cached_pair(p, scale)) for p in chosen], shipped.source_label("validation")


#: how validation patches are picked inside each photo (recorded in every result)
SELECTION = "gradient-energy quantiles"


def validation_set(scale: int, patch_hw: Sequence[int], *, val_dir: Optional[str | Path] = None,
                   n_images: int = 5, patches_per_image: int = 6, seed: int = 1) -> ValidationSet:
    """Patches of every photo stratified by detail, smooth to textured.

    Per photo, 8 random LR windows per wanted patch are scored by gradient energy (mean absolute
    horizontal + vertical difference of the grey LR window), sorted, and the windows at the
    energy quantiles (k + 0.5) / n, k = 0..n-1, are kept: one from each stratum from the
    smoothest (where int8's banding shows most) to the most detailed (where PSNR errors are
    largest). Picking only the most detailed windows, as before, left smooth content out.
    Deterministic for a seed."""
    images, source = _val_images(scale, val_dir, n_images)
    ph, pw = int(patch_hw[0]), int(patch_hw[1])
    rng = np.random.default_rng(seed)
    lrs, hrs, owner = [], [], []
    for i, (name, hr, lr) in enumerate(images):
        h, w = lr.shape[:2]
        if h < min(ph, MIN_LR_SIDE) or w < min(pw, MIN_LR_SIDE):
            raise image_io.DataError(f"validation image {name} ({w}x{h} LR) is too small to validate on: it needs "
                                 f"{min(pw, MIN_LR_SIDE)}x{min(ph, MIN_LR_SIDE)} LR pixels or more")
        if h < ph or w < pw:  # a frame-sized input larger than the photo: HR mirrored out, its own LR made
            hr = mirror_to(hr, ph * scale, pw * scale)
            lr = bicubic_lr(hr, scale)
        h, w = lr.shape[:2]
        cands = [(int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1)))
                 for _ in range(patches_per_image * 8)]
        g = lr.astype(np.float32).mean(-1)
        energy = [float(np.abs(np.diff(g[y:y + ph, x:x + pw], axis=0)).mean()
                        + np.abs(np.diff(g[y:y + ph, x:x + pw], axis=1)).mean()) for y, x in cands]
        order = np.argsort(energy, kind="stable")
        picks = [int(order[int((k + 0.5) * len(order) / patches_per_image)]) for k in range(patches_per_image)]
        for k in picks:
            y, x = cands[k]
            lrs.append(lr[y:y + ph, x:x + pw])
            hrs.append(hr[y * scale:(y + ph) * scale, x * scale:(x + pw) * scale])
            owner.append(i)
    return ValidationSet(tuple(lrs), tuple(hrs), tuple(n for n, _, _ in images), source, tuple(owner),
                         images_sha256((n, hr) for n, hr, _ in images))
