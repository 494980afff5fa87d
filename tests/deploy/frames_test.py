"""Frames and tiles (deploy/latency/frames.py, predict_latency.py --frame/--fps; issue 27)."""
import math

import pytest

import models
from deploy.latency import frames
from deploy.latency.device_profiles import LatencyError
from deploy.latency.predict import predict_frame, predict_keras
from tests.conftest import run_tool


def test_a_profile_prices_any_input_size_as_fixed_plus_per_pixel():
    """Two priced sizes give the cost at every other size exactly (what the tile plans rely on)."""
    ms = lambda hw: predict_keras(models.build("espcn", 3, input_shape=hw), "snapdragon_8gen3",  # noqa: E731
                                  name="espcn", scale=3, precision="a8w8")["ms"]
    cost = frames.size_cost(ms, ((16, 16), (24, 40)))
    assert cost.fixed_ms > 0 and cost.per_pixel_ms > 0
    assert cost.ms(40, 56) == pytest.approx(ms((40, 56)), rel=1e-9)


def test_tile_plans_count_tiles_halo_and_fixed_cost():
    cost = frames.SizeCost(fixed_ms=0.2, per_pixel_ms=1e-5)
    plans = frames.tile_plans(cost, (360, 640), halo=4.2, sides=(128, 512, 1024))
    by = {p.tile: p for p in plans}
    assert set(by) == {None, 128, 512}                     # 1024 >= the frame: not a tiling
    assert by[128].invokes == 3 * 5 and by[128].input_hw == (138, 138)
    assert by[512].invokes == 2 and by[512].input_hw == (370, 522)   # clipped to the frame's height
    assert by[128].ms == pytest.approx(15 * (0.2 + 1e-5 * 138 * 138))
    assert plans[0].tile is None and plans[0].fps == pytest.approx(1e3 / (0.2 + 1e-5 * 360 * 640))
    assert [p.ms for p in plans] == sorted(p.ms for p in plans)


def test_a_frame_must_divide_by_the_scale():
    assert frames.lr_frame((1920, 1080), 3) == (360, 640)
    with pytest.raises(LatencyError, match="not a multiple of x4"):
        frames.lr_frame((1920, 1082), 4)
    with pytest.raises(LatencyError, match="--model or a --keras_model"):
        predict_frame(profiles=["snapdragon_8gen3"], frame_wh=(192, 96), scale=3)


def test_predict_frame_on_every_profile_asked():
    res = predict_frame(profiles=["snapdragon_8gen3", "snapdragon_8elitegen5"], frame_wh=(192, 96), scale=3,
                        model="espcn", precision="a8w8")
    assert res["lr_hw"] == [32, 64] and res["halo_lr"] > 0
    for r in res["profiles"].values():
        assert r["plans"][0]["ms"] == min(p["ms"] for p in r["plans"]) and math.isfinite(r["plans"][0]["fps"])
    s24, s26 = (res["profiles"][p]["plans"][0]["ms"] for p in ("snapdragon_8gen3", "snapdragon_8elitegen5"))
    assert s26 < s24     # the newer phone is faster on the same plan


@pytest.mark.slow
def test_cli_fps_nobody_reaches_is_one_line_naming_the_best():
    p = run_tool("predict_latency", "--model", "espcn", "--scale", "3", "--frame", "1920x1080", "--fps", "1e9")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("error: no phone profile reaches 1e+09 fps") and "the best is snapdragon_" in line
    p = run_tool("predict_latency", "--model", "espcn", "--fps", "30")
    assert p.returncode == 2 and "--fps needs --frame" in p.stderr


def test_fps_verdict_names_who_reaches_it_and_the_best():
    assert frames.fps_verdict({"a": 25.0, "b": 61.0, "c": 40.0}, 30) == (["b", "c"], "b")
    assert frames.fps_verdict({"a": 25.0}, 30) == ([], "a")
    for bad in (0, -1, float("nan")):
        with pytest.raises(LatencyError, match="positive number of frames"):
            frames.fps_verdict({"a": 25.0}, bad)
