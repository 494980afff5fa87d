"""PSNR and SSIM as SR papers report them.

Inputs: uint8 (or float in [0, 255]) RGB, HWC. Conventions (stored with every result): Y channel
of BT.601 (MATLAB `rgb2ycbcr`, Y in [16, 235]), `crop_border = scale` pixels shaved on each side,
float64 arithmetic. SSIM is scikit-image's with the settings of Wang et al. / BasicSR: 11x11
Gaussian window, sigma 1.5, population covariance, valid region only.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import math

import numpy as np
from skimage.metrics import structural_similarity

#: PSNR of identical images: a finite cap, so every JSON stays valid JSON and means average.
PSNR_CAP_DB = 100.0

CONVENTION = {"channel": "y_bt601", "crop_border": "scale", "data_range": 255, "psnr_cap_db": PSNR_CAP_DB,
              "ssim": "gaussian sigma=1.5 win=11 (skimage, Wang et al.)"}


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma in [16, 235] from RGB in [0, 255], as MATLAB's rgb2ycbcr."""
    x = np.asarray(img, dtype=np.float64)
    if x.ndim == 2:
        return x
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def _prepare(pred: np.ndarray, ref: np.ndarray, crop_border: int, y_channel: bool) -> tuple:
    if pred.shape != ref.shape:
        raise UserInputError(f"image shapes differ: {pred.shape} vs {ref.shape}")
    a = rgb_to_y(pred) if y_channel else np.asarray(pred, np.float64)
    b = rgb_to_y(ref) if y_channel else np.asarray(ref, np.float64)
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def mse_y(pred: np.ndarray, ref: np.ndarray, *, crop_border: int, y_channel: bool = True) -> float:
    a, b = _prepare(pred, ref, crop_border, y_channel)
    return float(np.mean((a - b) ** 2))


def psnr_from_mse(mse: float) -> float:
    """PSNR (dB, 8-bit range) of a mean squared error, capped at PSNR_CAP_DB (mse 0 included)."""
    return PSNR_CAP_DB if mse <= 255.0 ** 2 * 10 ** (-PSNR_CAP_DB / 10) else 10.0 * math.log10(255.0 ** 2 / mse)


def psnr(pred: np.ndarray, ref: np.ndarray, *, crop_border: int, y_channel: bool = True) -> float:
    return psnr_from_mse(mse_y(pred, ref, crop_border=crop_border, y_channel=y_channel))


def ssim(pred: np.ndarray, ref: np.ndarray, *, crop_border: int, y_channel: bool = True) -> float:
    a, b = _prepare(pred, ref, crop_border, y_channel)
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255.0)
    if a.ndim == 2:
        return float(structural_similarity(a, b, **kw))
    return float(np.mean([structural_similarity(a[..., c], b[..., c], **kw) for c in range(a.shape[-1])]))
