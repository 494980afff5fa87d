"""Training batches: aligned random LR/HR crops, texture-favouring, with dihedral augmentation.

Each step's batch comes from its own RNG, seeded by (seed, step): the sampler's whole state is
the step number, so a run resumed from a checkpoint draws exactly the batches it would have
drawn uninterrupted, whatever happened in between (no RNG state to lose in a kill -9).

Photos are mostly smooth (sky, bokeh, walls): steps spent on flat patches teach little. Three
ways to pick patches:
  top       of 3 x batch random crops keep the batch with the most detail (the shipped recipes);
  weighted  keep each random crop with probability 1 - exp(-detail / median detail), at least
            5 %: textured crops almost always, flat ones sometimes (more varied than `top`);
  uniform   every random crop.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from deploy.errors import UserInputError

SAMPLERS = ("top", "weighted", "uniform")
Pair = tuple[np.ndarray, np.ndarray]  # (HR, LR) uint8
MIN_ACCEPT = 0.05  # `weighted`: even a flat patch is kept this often (nets must learn flat areas)
REF_SAMPLES = 256  # random crops whose median detail scales `weighted`'s acceptance


def detail(patch: np.ndarray) -> float:
    """Mean absolute gradient of a patch's grey level (its texture energy)."""
    g = patch.astype(np.float32).mean(axis=-1)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def _areas(pairs: Sequence[Pair]) -> np.ndarray:
    a = np.array([lr.shape[0] * lr.shape[1] for _, lr in pairs], dtype=np.float64)
    return a / a.sum()


def _crop(pairs: Sequence[Pair], patch: int, rng: np.random.Generator, p: np.ndarray) -> tuple[int, int, int]:
    i = int(rng.choice(len(pairs), p=p))
    lr = pairs[i][1]
    return i, int(rng.integers(0, lr.shape[0] - patch + 1)), int(rng.integers(0, lr.shape[1] - patch + 1))


def _cut(pairs: Sequence[Pair], crops, patch: int, scale: int, rng: np.random.Generator, augment: bool):
    lrs, hrs = [], []
    for i, y, x in crops:
        hr, lr = pairs[i]
        lp = lr[y:y + patch, x:x + patch]
        hp = hr[y * scale:(y + patch) * scale, x * scale:(x + patch) * scale]
        if augment:
            k, flip = rng.integers(0, 4), rng.integers(0, 2)
            lp, hp = np.rot90(lp, k), np.rot90(hp, k)
            if flip:
                lp, hp = lp[:, ::-1], hp[:, ::-1]
        lrs.append(lp)
        hrs.append(hp)
    return (np.stack(lrs).astype(np.float32) / 255.0, np.stack(hrs).astype(np.float32) / 255.0)


def sample_batch(pairs: Sequence[Pair], batch: int, patch: int, scale: int, rng: np.random.Generator,
                 oversample: int = 3, *, sampler: str = "top", augment: bool = True,
                 ref_detail: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) float32 batches in [0, 1]; `top` draws exactly as the shipped recipes did."""
    p = _areas(pairs)
    if sampler == "top":
        idx = rng.choice(len(pairs), size=batch * oversample, p=p)
        cands = []
        for i in idx:
            lr = pairs[i][1]
            y = rng.integers(0, lr.shape[0] - patch + 1)
            x = rng.integers(0, lr.shape[1] - patch + 1)
            cands.append((detail(lr[y:y + patch, x:x + patch]), i, y, x))
        cands.sort(key=lambda c: -c[0])
        crops = [(i, y, x) for _, i, y, x in cands[:batch]]
    elif sampler == "weighted":
        crops = []
        for _ in range(batch * 100):  # bounded: after that, take what comes
            i, y, x = _crop(pairs, patch, rng, p)
            d = detail(pairs[i][1][y:y + patch, x:x + patch])
            if rng.random() < max(MIN_ACCEPT, 1.0 - np.exp(-d / ref_detail)):
                crops.append((i, y, x))
                if len(crops) == batch:
                    break
        while len(crops) < batch:
            crops.append(_crop(pairs, patch, rng, p))
    elif sampler == "uniform":
        crops = [_crop(pairs, patch, rng, p) for _ in range(batch)]
    else:
        raise UserInputError(f"patch sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")
    return _cut(pairs, crops, patch, scale, rng, augment)


def reference_detail(pairs: Sequence[Pair], patch: int, seed: int) -> float:
    """Median detail of random crops: the scale of `weighted`'s acceptance curve."""
    rng = np.random.default_rng([seed, 1 << 31])  # a stream no training step uses
    p = _areas(pairs)
    vals = [detail(pairs[i][1][y:y + patch, x:x + patch])
            for i, y, x in (_crop(pairs, patch, rng, p) for _ in range(REF_SAMPLES))]
    return max(float(np.median(vals)), 1e-3)


@dataclasses.dataclass(frozen=True)
class Sampler:
    """The batch of any step, from the photos and a few numbers (the state a checkpoint keeps)."""
    pairs: Sequence[Pair]
    batch: int
    patch: int
    scale: int
    seed: int
    kind: str = "top"
    augment: bool = True
    ref_detail: float = 1.0

    def batch_at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        return sample_batch(self.pairs, self.batch, self.patch, self.scale, np.random.default_rng([self.seed, step]),
                            sampler=self.kind, augment=self.augment, ref_detail=self.ref_detail)

    def state(self, next_step: int) -> dict:
        return {"kind": self.kind, "seed": self.seed, "augment": self.augment, "ref_detail": self.ref_detail,
                "rng": "numpy default_rng([seed, step]) per step", "next_step": next_step}
