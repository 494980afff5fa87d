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


#: above this many pixels, PSNR and SSIM are computed in strips of STRIP_ROWS rows (float64 copies
#: of a 24-megapixel photo's Y and SSIM's five filtered maps would take gigabytes); below it, the
#: whole image at once, so every figure on ordinary images stays bit for bit what it was
STREAM_ABOVE_PIXELS = 8_000_000
STRIP_ROWS = 512
_SSIM_KW = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255.0)
_SSIM_PAD = 5   # (win_size - 1) // 2 for sigma 1.5 (skimage: win_size = 2 * int(3.5 * sigma + 0.5) + 1 = 11)


def _streamed(pred: np.ndarray) -> bool:
    return pred.shape[0] * pred.shape[1] > STREAM_ABOVE_PIXELS


def _strips(pred: np.ndarray, ref: np.ndarray, crop_border: int, y_channel: bool, margin: int = 0):
    """(strip of a, strip of b, rows of it that are this strip's own) over the cropped images, each
    strip read with `margin` more rows on each side where the image has them."""
    if pred.shape != ref.shape:
        raise UserInputError(f"image shapes differ: {pred.shape} vs {ref.shape}")
    c = crop_border
    h, w = pred.shape[0] - 2 * c, pred.shape[1] - 2 * c
    conv = rgb_to_y if y_channel else (lambda x: np.asarray(x, np.float64))
    for r0 in range(0, h, STRIP_ROWS):
        r1 = min(r0 + STRIP_ROWS, h)
        lo, hi = max(0, r0 - margin), min(h, r1 + margin)
        yield (conv(pred[c + lo:c + hi, c:c + w]), conv(ref[c + lo:c + hi, c:c + w]), slice(r0 - lo, r1 - lo))


def mse_y(pred: np.ndarray, ref: np.ndarray, *, crop_border: int, y_channel: bool = True) -> float:
    if _streamed(pred):
        total, n = 0.0, 0
        for a, b, _ in _strips(pred, ref, crop_border, y_channel):
            total += float(np.sum((a - b) ** 2))
            n += a.size
        return total / n
    a, b = _prepare(pred, ref, crop_border, y_channel)
    return float(np.mean((a - b) ** 2))


def psnr_from_mse(mse: float) -> float:
    """PSNR (dB, 8-bit range) of a mean squared error, capped at PSNR_CAP_DB (mse 0 included)."""
    return PSNR_CAP_DB if mse <= 255.0 ** 2 * 10 ** (-PSNR_CAP_DB / 10) else 10.0 * math.log10(255.0 ** 2 / mse)


def psnr(pred: np.ndarray, ref: np.ndarray, *, crop_border: int, y_channel: bool = True) -> float:
    return psnr_from_mse(mse_y(pred, ref, crop_border=crop_border, y_channel=y_channel))


def ssim(pred: np.ndarray, ref: np.ndarray, *, crop_border: int, y_channel: bool = True) -> float:
    if _streamed(pred) and (y_channel or pred.ndim == 2):
        return _ssim_streamed(pred, ref, crop_border, y_channel)
    a, b = _prepare(pred, ref, crop_border, y_channel)
    if a.ndim == 2:
        return float(structural_similarity(a, b, **_SSIM_KW))
    return float(np.mean([structural_similarity(a[..., c], b[..., c], **_SSIM_KW) for c in range(a.shape[-1])]))


def _ssim_streamed(pred: np.ndarray, ref: np.ndarray, crop_border: int, y_channel: bool) -> float:
    """skimage's SSIM (the mean of its map away from a _SSIM_PAD border) from strips read with
    _SSIM_PAD rows of context: every map value is the one the whole image gives."""
    h = pred.shape[0] - 2 * crop_border
    total, n, row = 0.0, 0, 0
    for a, b, own in _strips(pred, ref, crop_border, y_channel, margin=_SSIM_PAD):
        _, smap = structural_similarity(a, b, full=True, **_SSIM_KW)
        rows = np.arange(own.stop - own.start) + row     # this strip's rows in the cropped image
        keep = (rows >= _SSIM_PAD) & (rows < h - _SSIM_PAD)
        part = smap[own][keep][:, _SSIM_PAD:-_SSIM_PAD]
        total += float(part.sum())
        n += part.size
        row += own.stop - own.start
    return total / n
