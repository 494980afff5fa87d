"""Big photos are evaluated in strips (issue 31: a 6000x4000 photo peaked at 3.8 GB): the strips
give exactly the numbers the whole-image computation gives."""
import numpy as np
import pytest

from deploy.data import imresize as resize
from deploy.data import metrics


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    ref = (rng.random((611, 437, 3)) * 255).astype(np.uint8)
    pred = np.clip(ref.astype(int) + rng.integers(-20, 20, ref.shape), 0, 255).astype(np.uint8)
    return pred, ref


def test_streamed_psnr_and_ssim_equal_the_whole_image(pair, monkeypatch):
    pred, ref = pair
    whole = [metrics.psnr(pred, ref, crop_border=3), metrics.ssim(pred, ref, crop_border=3),
             metrics.ssim(pred, ref, crop_border=0)]
    monkeypatch.setattr(metrics, "STREAM_ABOVE_PIXELS", 0)
    monkeypatch.setattr(metrics, "STRIP_ROWS", 97)          # strips that do not divide the image
    streamed = [metrics.psnr(pred, ref, crop_border=3), metrics.ssim(pred, ref, crop_border=3),
                metrics.ssim(pred, ref, crop_border=0)]
    assert streamed[0] == pytest.approx(whole[0], abs=1e-9)
    assert streamed[1:] == pytest.approx(whole[1:], abs=1e-12)


@pytest.mark.parametrize("scale", [1 / 3, 4.0])
def test_resize_in_strips_is_bit_identical(pair, monkeypatch, scale):
    img = pair[0]
    whole, whole_f = resize.imresize(img, scale), resize.imresize(img.astype(np.float64), scale)
    monkeypatch.setattr(resize, "STRIP_ROWS", 13)
    np.testing.assert_array_equal(resize.imresize(img, scale), whole)
    np.testing.assert_array_equal(resize.imresize(img.astype(np.float64), scale), whole_f)


def test_runner_output_in_strips_is_bit_identical(monkeypatch):
    from deploy.data.io_convention import IOConvention
    from deploy.evaluation import runners
    out = np.random.default_rng(1).normal(0.5, 0.4, (203, 67, 3)).astype(np.float32)
    whole = runners._to_uint8(IOConvention().to_rgb01(out, None, 2))
    r = runners.TFLiteRunner.__new__(runners.TFLiteRunner)   # only _finish's attributes are needed
    r.convention, r.scale = IOConvention(), 2
    monkeypatch.setattr(runners, "FINISH_ROWS", 17)
    np.testing.assert_array_equal(r._finish(out, np.zeros((101, 33, 3), np.uint8)), whole)
