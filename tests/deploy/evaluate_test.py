import json

import numpy as np
import pytest

import models
from deploy.data import calibration
from deploy.convert import uniform
from deploy.data import images as image_io
from deploy.commands import jobs
from deploy.evaluation.evaluator import evaluate
from deploy.evaluation.runners import KerasRunner, TFLiteRunner, tile_starts


def test_tile_starts_cover_everything():
    for length, tile, ov in [(80, 64, 8), (100, 32, 8), (32, 32, 8), (97, 20, 4)]:
        starts = tile_starts(length, tile, ov)
        assert starts[0] == 0 and starts[-1] == length - tile
        assert all(b - a <= tile - 2 * ov for a, b in zip(starts, starts[1:]))


def test_tiled_fixed_model_equals_whole_image(random_weights):
    """XLSR's receptive field (radius 5) fits in the 8-pixel overlap: tiling is exact."""
    model = models.build("xlsr", 2, weights=random_weights("xlsr", 2))
    fixed = models.with_fixed_shape(model, "xlsr", 2, (24, 24))
    tfl = uniform.convert_uniform(fixed, "float").tflite
    lr = image_io.default_eval_images()[1][1][:50, :61]
    tiled = TFLiteRunner(tfl, 2)(lr)
    whole = KerasRunner(model, 2)(lr)
    assert tiled.shape == whole.shape == (100, 122, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1


def test_parallel_workers_give_the_sequential_result(random_weights, hr_dir):
    """Tiles and images spread over several interpreters land exactly where one would put them."""
    model = models.build("xlsr", 2, weights=random_weights("xlsr", 2))
    fixed = models.with_fixed_shape(model, "xlsr", 2, (24, 24))
    calib = calibration.calibration_set(2, (24, 24), calib_dir=hr_dir, n_images=2, patches_per_image=2)
    tfl = uniform.convert_uniform(fixed, "a16w8", calib=calib).tflite
    images = [img[:50, :61] for _, img in image_io.default_eval_images()[:3]]
    one, many = TFLiteRunner(tfl, 2, workers=1), TFLiteRunner(tfl, 2, workers=2)
    assert many.workers == 2 and one.workers == 1
    expected = [one(lr) for lr in images]
    for got in ([many(lr) for lr in images], many.map(images), one.map(images)):
        for e, g in zip(expected, got):
            np.testing.assert_array_equal(e, g)
    assert many.invocations == one.invocations > 0  # two passes each: every tile ran once per pass


def test_eval_json_contract(tmp_path, random_weights, hr_dir):
    out = tmp_path / "m.tflite"
    jobs.convert_zoo_model("espcn", 3, "float", out, input_hw=(16, 16),
                           weights=str(random_weights("espcn", 3)))
    result = jobs.evaluate_tflite(out, data_dir=str(hr_dir))
    jobs.save_result(result, str(tmp_path / "r.json"))
    j = json.loads((tmp_path / "r.json").read_text())
    assert set(j["mean"]) == {"psnr_y", "ssim_y"} and set(j["bicubic"]) == {"psnr_y", "ssim_y"}
    assert [i["name"] for i in j["images"]] == sorted(p.stem for p in hr_dir.iterdir())
    assert {"name", "psnr_y", "ssim_y"} <= set(j["images"][0])
    assert j["scale"] == 3 and j["convention"]["crop_border"] == 3
    assert j["mean"]["psnr_y"] == pytest.approx(np.mean([i["psnr_y"] for i in j["images"]]), abs=1e-3)
    assert 10 < j["bicubic"]["psnr_y"] < 60
    assert "mean" in result.table()


def test_image_smaller_than_fixed_input_is_mirror_padded(random_weights, tmp_path):
    """A 240 px crop at x4 is 60 LR px, under a 64x64 model: padded to a tile, cropped back."""
    fixed = models.with_fixed_shape(models.build("espcn", 2, weights=random_weights("espcn", 2)),
                                    "espcn", 2, (32, 32))
    runner = TFLiteRunner(uniform.convert_uniform(fixed, "float").tflite, 2)
    lr = np.random.default_rng(0).integers(0, 256, (20, 40, 3), dtype=np.uint8)
    sr = runner(lr)
    assert sr.shape == (40, 80, 3)
    whole = runner(np.pad(lr, ((0, 12), (0, 0), (0, 0)), mode="symmetric"))
    assert np.array_equal(sr, whole[:40])


def test_keras_float_eval_of_identity_like_model_beats_nothing(random_weights):
    model = models.build("espcn", 2, weights=random_weights("espcn", 2))
    samples = image_io.eval_samples(2)[:1]
    r = evaluate(KerasRunner(model, 2), samples, model="espcn", dataset="default", progress=False)
    assert r.images[0].name == "astronaut" and np.isfinite(r.mean["psnr_y"])
