"""What QAT trains on and against (deploy/experimental/lsq.py): LR patches of the training photos,
and the per-patch PSNR to the float output its loss is made of."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from deploy.errors import UserInputError


class QatError(UserInputError):
    """QAT cannot run on this model or these arguments."""


def patch_psnr(y, t, peak: float):
    """Per patch PSNR (dB) of `y` against the float output `t`: the loss is its mean over the batch,
    so a smooth patch's small error counts as much as a detailed patch's large one (the metric is a
    mean of per-image PSNRs; an L1 or MSE loss would be ruled by the detailed patches)."""
    import tensorflow as tf
    mse = tf.reduce_mean(tf.square(y - t), axis=[1, 2, 3])
    return 10.0 * tf.math.log(peak * peak / (mse + (1e-4 * peak) ** 2)) / tf.math.log(10.0)


def training_patches(scale: int, hw: tuple[int, int], convention, *, batch: int, seed: int = 0,
                     train_dir: Optional[str] = None) -> Callable[[int], np.ndarray]:
    """`step -> LR batch` (model units, `hw` patches) from the training photos (the shipped ones
    by default: training + calibration splits; never validation or evaluation photos), drawn
    uniformly (smooth regions as often as detailed ones), flipped/rotated, seeded per step."""
    from deploy.data import images
    from deploy.training.sampler import sample_batch
    from deploy.training.trainer import _load_photos
    train_files, _val, _label = images.training_photos(train_dir)
    if hw[0] != hw[1]:
        raise QatError(f"QAT trains on square patches; the model's input is {hw[0]}x{hw[1]}")
    pairs = [p for p in _load_photos(train_files, scale) if min(p[1].shape[:2]) >= hw[0]]
    if not pairs:
        raise QatError(f"no training photo has an LR side of {hw[0]} px at x{scale}")

    def draw(step: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 7, step])
        lr_b, _hr = sample_batch(pairs, batch, hw[0], scale, rng, sampler="uniform")
        return convention.model_input(lr_b)
    return draw
