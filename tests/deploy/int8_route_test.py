"""`--precision int8` is the better-measured of the converter's int8 and per-layer all-a8w8."""
import pytest

import deploy
from deploy.evaluation import int8_route

HW = (16, 16)


def test_int8_is_the_better_route(hr_dir):
    src = deploy.load_model("espcn", 2)
    conv, per = int8_route.routes(src, input_size=HW, calib_dir=hr_dir, calib_images=2)
    chosen, info = int8_route.choose(src, conv, per, input_size=HW, val_dir=hr_dir, val_images=2)
    psnr = info["validation_psnr_y"]
    assert info["chosen"] == max(psnr, key=lambda k: (psnr[k], k == "converter"))
    assert chosen is (per if info["chosen"] == "per_layer_a8w8" else conv)
    q = int8_route.quantize_int8(src, input_size=HW, calib_dir=hr_dir, calib_images=2, val_dir=hr_dir,
                                 val_images=2)
    assert q.report["precision"] == "int8" and q.report["int8_route"]["chosen"] == info["chosen"]


def test_int8_io_keeps_the_converter(hr_dir):
    src = deploy.load_model("espcn", 2)
    conv, per = int8_route.routes(src, input_size=HW, calib_dir=hr_dir, calib_images=2, io_type="int8")
    assert per is None
    assert int8_route.choose(src, conv, per)[1]["chosen"] == "converter"


def test_public_quantize_int8_is_the_best_route(hr_dir):
    """`deploy.quantize(src, "int8")` is what `convert.py --precision int8` gives: the better
    route, said in the report; `int8_route="converter"` keeps the converter's model."""
    src = deploy.load_model("espcn", 2)
    best = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, val_dir=hr_dir, val_images=2),
                           input_size=HW, calib_dir=hr_dir)
    assert best.report["int8_route"]["chosen"] in ("converter", "per_layer_a8w8")
    conv = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, int8_route="converter"),
                           input_size=HW, calib_dir=hr_dir)
    assert "int8_route" not in conv.report
    with pytest.raises(deploy.UserInputError, match="int8_route"):
        deploy.quantize(src, "int8", deploy.QuantizeConfig(int8_route="fastest"))
