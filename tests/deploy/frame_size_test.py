"""Frame-sized models from photos smaller than the frame (issue 27): calibration and validation
patches mirror a photo out to the model input instead of refusing it, and say so."""
import numpy as np
import pytest

from deploy.data import calibration
from deploy.data.calibration import MIN_LR_SIDE, mirror_to
from deploy.data.images import DataError
from deploy.data.imresize import bicubic_lr


def test_mirror_holds_only_the_photos_own_pixels_and_keeps_it_in_place():
    lr = np.random.default_rng(0).integers(0, 255, (30, 20, 3), np.uint8)
    big = mirror_to(lr, 100, 70)        # more than double: the padding repeats
    assert big.shape[:2] >= (100, 70)
    np.testing.assert_array_equal(big[:30, :20], lr)
    assert set(map(tuple, big.reshape(-1, 3))) <= set(map(tuple, lr.reshape(-1, 3)))
    np.testing.assert_array_equal(mirror_to(lr, 10, 10), lr)   # large enough: unchanged


def test_calibration_at_an_input_larger_than_the_photos(hr_dir):
    # hr_dir holds 96x96 photos: 48x48 LR at x2, smaller than a 64x80 input
    cal = calibration.calibration_set(2, (64, 80), calib_dir=hr_dir, n_images=3, patches_per_image=2)
    assert cal.patches.shape == (3, 64, 80, 3)   # mirrored to exactly the input: one crop each, not 2 copies
    assert set(cal.to_json()["mirrored_to_input_size"]) == set(cal.images)
    small = calibration.calibration_set(2, (32, 32), calib_dir=hr_dir, n_images=3, patches_per_image=2)
    assert "mirrored_to_input_size" not in small.to_json()   # photos large enough: as before
    with pytest.raises(DataError, match=f"too small.*{MIN_LR_SIDE}x{MIN_LR_SIDE} in LR"):
        calibration.calibration_set(3, (64, 64), calib_dir=hr_dir)   # 32x32 LR: too little content


def test_validation_patches_at_an_input_larger_than_the_photos(hr_dir):
    from deploy.policy_search.oracle import validation_set
    v = validation_set(2, (64, 80), val_dir=hr_dir, n_images=3, patches_per_image=2)
    assert len(v.lr) == 6 and {p.shape for p in v.lr} == {(64, 80, 3)} and {p.shape for p in v.hr} == {(128, 160, 3)}
    for lr, hr in zip(v.lr, v.hr):   # a real pair: the LR is the mirrored HR's bicubic LR (interior: no crop edge)
        assert np.abs(bicubic_lr(hr, 2).astype(int) - lr.astype(int))[4:-4, 4:-4].max() <= 1
