import math

import numpy as np
import pytest

from deploy.data.imresize import bicubic_lr, imresize, modcrop


def _naive_1d(x: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB's imresize along one axis, written as a plain loop (cubic a=-0.5, antialias)."""
    def cubic(t):
        t = abs(t)
        if t <= 1:
            return 1.5 * t ** 3 - 2.5 * t ** 2 + 1
        if t <= 2:
            return -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2
        return 0.0
    n, out_len = len(x), int(math.ceil(len(x) * scale))
    width = 4 / scale if scale < 1 else 4
    out = []
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        acc = wsum = 0.0
        for j in range(left, left + int(math.ceil(width)) + 2):
            wt = scale * cubic(scale * (u - j)) if scale < 1 else cubic(u - j)
            k = j - 1
            while k < 0 or k >= n:  # symmetric padding
                k = -k - 1 if k < 0 else 2 * n - k - 1
            acc += wt * x[k]
            wsum += wt
        out.append(acc / wsum)
    return np.array(out)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_matches_naive_matlab_algorithm(scale):
    rng = np.random.default_rng(0)
    img = rng.random((23, 19)) * 255
    ours = imresize(img, scale)
    rows = np.stack([_naive_1d(r, scale) for r in img])
    expected = np.stack([_naive_1d(c, scale) for c in rows.T]).T
    np.testing.assert_allclose(ours, expected, atol=1e-9)


def test_known_ramp_values():
    """imresize(0:11, 0.5) -- symmetric about the centre, ends pulled in by the antialias."""
    out = imresize(np.tile(np.arange(12.0), (4, 1)), 0.5)[0]
    np.testing.assert_allclose(out, [0.44921875, 2.48828125, 4.5, 6.5, 8.51171875, 10.55078125])


def test_uint8_in_uint8_out_and_constant_kept():
    img = np.full((30, 36, 3), 77, np.uint8)
    out = imresize(img, 1 / 3)
    assert out.dtype == np.uint8 and out.shape == (10, 12, 3)
    assert (out == 77).all()


def test_modcrop_and_lr_shape():
    hr = np.zeros((101, 98, 3), np.uint8)
    assert modcrop(hr, 4).shape == (100, 96, 3)
    assert bicubic_lr(hr, 3).shape == (33, 32, 3)
