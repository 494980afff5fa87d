import math

import numpy as np
import pytest
from scipy.signal import convolve2d

from deploy.data import metrics


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s SSIM written out independently (as BasicSR: 11x11 Gaussian, valid)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    f = lambda x: convolve2d(x, w, mode="valid")  # noqa: E731
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - mu1 ** 2, f(b * b) - mu2 ** 2, f(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s1 + s2 + c2))
    return float(m.mean())


def test_y_channel_is_bt601():
    assert metrics.rgb_to_y(np.array([[[0, 0, 0]]]))[0, 0] == pytest.approx(16.0)
    assert metrics.rgb_to_y(np.array([[[255, 255, 255]]]))[0, 0] == pytest.approx(235.0)


def test_psnr_known_value():
    ref = np.zeros((40, 40, 3), np.uint8)
    pred = ref + 10  # Y differs by 10 * 219/255 everywhere
    expected = 20 * math.log10(255 / (10 * 219 / 255))
    assert metrics.psnr(pred, ref, crop_border=3) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(29.4527, abs=1e-4)
    assert metrics.psnr(ref, ref, crop_border=0) == metrics.PSNR_CAP_DB  # one convention, valid JSON


def test_crop_border_is_shaved():
    ref = np.full((30, 30, 3), 100, np.uint8)
    pred = ref.copy()
    pred[:3] = 0  # damage only the border rows
    assert metrics.psnr(pred, ref, crop_border=3) == metrics.PSNR_CAP_DB
    assert metrics.psnr(pred, ref, crop_border=2) < 30


def test_ssim_matches_independent_implementation():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (48, 48, 3)).astype(np.uint8)
    pred = np.clip(ref.astype(int) + rng.integers(-20, 21, ref.shape), 0, 255).astype(np.uint8)
    ya, yb = metrics.rgb_to_y(pred)[4:-4, 4:-4], metrics.rgb_to_y(ref)[4:-4, 4:-4]
    assert metrics.ssim(pred, ref, crop_border=4) == pytest.approx(_reference_ssim(ya, yb), abs=1e-6)
    assert metrics.ssim(ref, ref, crop_border=4) == pytest.approx(1.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), crop_border=0)


def test_one_psnr_convention_for_evaluation_and_the_search_oracle():
    """Both paths cap identical images at the same finite value (was inf vs 100)."""
    import numpy as np

    from deploy.policy_search import oracle
    assert metrics.psnr_from_mse(0.0) == metrics.PSNR_CAP_DB == 100.0
    assert abs(metrics.psnr_from_mse(1.0) - 48.1308) < 1e-3
    hr = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    val = oracle.ValidationSet(lr=(hr[::2, ::2],), hr=(hr,), images=("a",), source="test", image_of=(0,))
    assert val.psnr_y([hr], 2) == metrics.psnr(hr, hr, crop_border=2) == metrics.PSNR_CAP_DB
