"""`--precision int8` is the best-measured of the converter's int8, per-layer all-a8w8 with min/max
ranges and per-layer all-a8w8 with MSE-chosen ranges."""
import pytest

import deploy
from deploy.evaluation import int8_route

HW = (16, 16)


def test_int8_is_the_better_route(hr_dir):
    src = deploy.load_model("espcn", 2)
    candidates = int8_route.routes(src, input_size=HW, calib_dir=hr_dir, calib_images=2)
    assert tuple(candidates) == int8_route.ROUTES
    assert candidates["per_layer_a8w8_mse"].report["ptq"]["label"] == "mse"  # the options, in the record
    assert candidates["per_layer_a8w8"].tflite_bytes != candidates["per_layer_a8w8_mse"].tflite_bytes
    chosen, info = int8_route.choose(src, candidates, input_size=HW, val_dir=hr_dir, val_images=2)
    psnr = info["validation_psnr_y"]
    order = {r: i for i, r in enumerate(int8_route.ROUTES)}
    assert info["chosen"] == max(psnr, key=lambda k: (psnr[k], -order[k]))  # ties: the earlier route
    assert chosen is candidates[info["chosen"]]
    q = int8_route.quantize_int8(src, input_size=HW, calib_dir=hr_dir, calib_images=2, val_dir=hr_dir,
                                 val_images=2)
    assert q.report["precision"] == "int8" and q.report["int8_route"]["chosen"] == info["chosen"]


def test_int8_io_keeps_the_converter(hr_dir):
    src = deploy.load_model("espcn", 2)
    candidates = int8_route.routes(src, input_size=HW, calib_dir=hr_dir, calib_images=2, io_type="int8")
    assert list(candidates) == ["converter"]
    assert int8_route.choose(src, candidates)[1]["chosen"] == "converter"


def test_public_quantize_int8_is_the_best_route(hr_dir):
    """`deploy.quantize(src, "int8")` is what `convert.py --precision int8` gives: the better
    route, said in the report; `int8_route="converter"` keeps the converter's model."""
    src = deploy.load_model("espcn", 2)
    best = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, val_dir=hr_dir, val_images=2),
                           input_size=HW, calib_dir=hr_dir)
    assert best.report["int8_route"]["chosen"] in int8_route.ROUTES
    conv = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, int8_route="converter"),
                           input_size=HW, calib_dir=hr_dir)
    assert "int8_route" not in conv.report
    with pytest.raises(deploy.UserInputError, match="int8_route"):
        deploy.quantize(src, "int8", deploy.QuantizeConfig(int8_route="fastest"))
