"""MATLAB-compatible bicubic `imresize` (antialiased when shrinking), in numpy.

SR papers make LR inputs with MATLAB's imresize; PIL's and TF's bicubic differ (kernel width when
shrinking, no antialias in TF), which moves PSNR by tenths of a dB. This ports MATLAB's
algorithm: cubic kernel a=-0.5, kernel widened to 4/scale when shrinking, symmetric padding,
each dimension resized as one sparse matrix product.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import math

import numpy as np
from scipy import sparse


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> sparse.csr_matrix:
    """The (out_len, in_len) matrix MATLAB's `contributions` describes."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel = lambda x: scale * _cubic(scale * x)  # noqa: E731
        kernel_width /= scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based, as in MATLAB
    w = kernel(u[:, None] - idx)
    w /= w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    rows = np.repeat(np.arange(out_len), taps)
    m = sparse.coo_matrix((w.ravel(), (rows, cols.ravel())), shape=(out_len, in_len))
    return m.tocsr()  # duplicates (mirrored taps) are summed


#: output rows resized at a time: a 24-megapixel photo is resized in strips of float64, never whole
STRIP_ROWS = 256


def imresize(img: np.ndarray, scale: float | None = None, *, output_shape: tuple[int, int] | None = None,
             antialias: bool = True) -> np.ndarray:
    """Resize an HxW or HxWxC image like MATLAB `imresize(img, scale, 'bicubic')`.

    uint8 in -> uint8 out (rounded, clipped, as MATLAB); float in -> float64 out. Computed in strips
    of STRIP_ROWS output rows (each reading only the input rows it needs): the same sums, element by
    element, as resizing the whole image at once, at a fraction of the memory.
    """
    if (scale is None) == (output_shape is None):
        raise UserInputError("give exactly one of scale or output_shape")
    h, w = img.shape[:2]
    if output_shape is None:
        out_h, out_w = int(math.ceil(h * scale)), int(math.ceil(w * scale))
        sh = sw = float(scale)
    else:
        out_h, out_w = output_shape
        sh, sw = out_h / h, out_w / w
    rows, cols = _resize_matrix(h, out_h, sh, antialias), _resize_matrix(w, out_w, sw, antialias)
    # MATLAB resizes the dimension with the smaller scale factor first.
    if sw < sh:   # columns first: the same algorithm on the transposed image
        return np.swapaxes(_resize_rows_first(np.swapaxes(img, 0, 1), cols, rows), 0, 1)
    return _resize_rows_first(img, rows, cols)


def _resize_rows_first(img: np.ndarray, rows: sparse.csr_matrix, cols: sparse.csr_matrix) -> np.ndarray:
    out_h, out_w = rows.shape[0], cols.shape[0]
    rest = img.shape[2:]
    out = np.empty((out_h, out_w, *rest), np.uint8 if img.dtype == np.uint8 else np.float64)
    for r0 in range(0, out_h, STRIP_ROWS):
        r = rows[r0:r0 + STRIP_ROWS]
        lo, hi = int(r.indices.min()), int(r.indices.max()) + 1   # the input rows this strip reads
        part = r[:, lo:hi] @ img[lo:hi].astype(np.float64).reshape(hi - lo, -1)      # (strip, w * C)
        n = part.shape[0]
        part = part.reshape(n, img.shape[1], *rest)
        xt = np.moveaxis(part, 1, 0).reshape(img.shape[1], -1)                      # (w, strip * C)
        part = np.moveaxis((cols @ xt).reshape(out_w, n, *rest), 0, 1)
        out[r0:r0 + n] = np.clip(np.round(part), 0, 255) if img.dtype == np.uint8 else part
    return out


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of `scale` (so HR = scale * LR exactly)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The LR image SR benchmarks use: modcrop, then MATLAB bicubic by 1/scale (uint8)."""
    return imresize(modcrop(hr, scale), 1.0 / scale)


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline every SR table reports (MATLAB imresize by `scale`)."""
    return imresize(lr, float(scale))
