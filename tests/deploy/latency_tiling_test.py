"""Channel-tiled pricing (htp_tiling): the padded work of convs and other ops, and that only a
profile asking for it (channel_tile) is priced that way."""
import json

import pytest

from deploy.convert import per_layer
from deploy.latency import cost_model, device_profiles
from deploy.latency.htp_tiling import ceil_to, tiled_work
from models._keras import keras


def _t(*shape):
    return {"shape": list(shape)}


def test_ceil_to():
    assert [ceil_to(n, 32) for n in (1, 3, 32, 33, 48, 64)] == [32, 32, 32, 64, 64, 64]
    assert ceil_to(3, 1) == 3


def test_conv_channels_round_up_to_the_tile_and_groups_are_tiled_each():
    t = {0: _t(1, 8, 8, 3), 1: _t(32, 3, 3, 3), 2: _t(1, 8, 8, 32),          # 3 -> 32 conv
         3: _t(1, 8, 8, 32), 4: _t(32, 3, 3, 8), 5: _t(1, 8, 8, 32),          # 4 groups of 8
         6: _t(1, 8, 8, 32), 7: _t(48, 3, 3, 32), 8: _t(1, 8, 8, 48)}         # 32 -> 48
    assert tiled_work("CONV_2D", [0, 1], [2], t, 32) == 64 * 9 * 32 * 32
    assert tiled_work("CONV_2D", [3, 4], [5], t, 32) == 64 * 9 * 4 * 32 * 32
    assert tiled_work("CONV_2D", [6, 7], [8], t, 32) == 64 * 9 * 32 * 64
    assert tiled_work("ADD", [8, 8], [8], t, 32) == 64 * 64                     # elements, 48 -> 64
    # tile 1 is the raw work (MACs / output elements), what cost_model.op_work gives
    for op, ins, outs in (("CONV_2D", [0, 1], [2]), ("CONV_2D", [3, 4], [5]), ("ADD", [8, 8], [8])):
        out_el = 64 * t[outs[0]]["shape"][-1]
        assert tiled_work(op, ins, outs, t, 1) == cost_model.op_work(op, ins, out_el, t)[1]


def _low_depth() -> keras.Model:
    keras.utils.set_random_seed(0)
    x_in = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", name="c1")(x_in)
    x = keras.layers.Conv2D(8, 3, padding="same", name="c2")(x)
    return keras.Model(x_in, x)


@pytest.fixture(scope="module")
def prep():
    return per_layer.prepare(_low_depth())


def _profile(tile):
    obj = json.loads((device_profiles.PROFILE_DIR / "htp_npu.json").read_text())
    if tile:
        obj["channel_tile"] = {"channels": tile, "source": "test"}
    return device_profiles.from_json(obj, "t")


def test_only_a_profile_with_channel_tile_prices_padded_work(prep):
    assert "channel_tile" not in json.loads((device_profiles.PROFILE_DIR / "htp_npu.json").read_text())
    assert [o.work for o in cost_model.graph_ops(prep)] == [o.work for o in cost_model.graph_ops(prep, 1)]
    pol = {l: "a8w8" for l in prep.layers}
    plain = cost_model.from_device_profile(prep, _profile(None), model="m", scale=1)
    same = cost_model.from_device_profile(prep, "htp_npu", model="m", scale=1)
    tiled = cost_model.from_device_profile(prep, _profile(32), model="m", scale=1)
    assert plain.predict_ms(pol) == same.predict_ms(pol)
    # 3->8 and 8->8 convs at 16x16: each costs a 32x32 conv, 16 x and ~43 x their raw MACs
    conv = lambda c: c.layer_ms["c2"]["a8w8"] - _profile(None).op_overhead_us["a8w8"] / 1e3  # noqa: E731
    assert conv(tiled) == pytest.approx(16 * conv(plain))
    assert tiled.predict_ms(pol) > plain.predict_ms(pol)


def test_channel_tile_without_source_or_integer_is_refused():
    obj = json.loads((device_profiles.PROFILE_DIR / "htp_npu.json").read_text())
    with pytest.raises(device_profiles.LatencyError, match="channel_tile"):
        device_profiles.from_json({**obj, "channel_tile": {"channels": 32}}, "t")
    with pytest.raises(device_profiles.LatencyError, match="channel_tile"):
        device_profiles.from_json({**obj, "channel_tile": {"channels": "32", "source": "x"}}, "t")


def test_published_phone_profiles_tile_as_the_chosen_form_says():
    """The fitted phone profiles tile channels (by 32) exactly when the model form the fit chose by
    cross-validation tiles some op (bench/results/fit_published_profiles.json)."""
    from bench.published.latency_fit import FORMS
    from bench.published.roofline_fit import ALL_FORMS as ROOFLINE_FORMS
    root = device_profiles.PROFILE_DIR.parents[2]
    chosen = json.loads((root / "bench/results/fit_published_profiles.json").read_text())["chosen_form"]
    form = {**FORMS, **ROOFLINE_FORMS}[chosen]
    tiles = form["convs"] != "none" or form["elementwise_tiled"]
    for name in ("snapdragon_8gen3", "snapdragon_8elite", "snapdragon_8elitegen5"):
        prof = device_profiles.load_profile(name)
        assert prof.tile == (32 if tiles else 1)
        if tiles:
            assert prof.tiling == {"tile": 32, "convs": form["convs"], "elementwise": form["elementwise_tiled"]}


def test_a_tflite_is_priced_with_the_tile_too(prep, tmp_path):
    """`predict_latency.py --tflite` prices the file's own ops: on a tiled profile the c2 conv
    (8 -> 8 channels) costs what a 32 -> 32 one does, as in the Keras-model path."""
    from deploy.latency.predict import predict_tflite
    path = tmp_path / "m.tflite"
    path.write_bytes(prep.float_tflite)
    plain, tiled = (predict_tflite(path, _profile(t)) for t in (None, 32))
    convs = lambda r: [row["work"] for row in r["breakdown"] if row.get("op") == "CONV_2D"]  # noqa: E731
    assert convs(plain) == [16 * 16 * 9 * 3 * 8, 16 * 16 * 9 * 8 * 8]
    assert convs(tiled) == [16 * 16 * 9 * 32 * 32] * 2


def test_dense_tiling_leaves_grouped_and_depthwise_convs_raw_and_elementwise_can_stay_raw():
    t = {0: _t(1, 8, 8, 3), 1: _t(32, 3, 3, 3), 2: _t(1, 8, 8, 32),          # dense 3 -> 32: tiled
         3: _t(1, 8, 8, 32), 4: _t(32, 3, 3, 8), 5: _t(1, 8, 8, 32),          # 4 groups of 8: raw
         6: _t(1, 3, 3, 32), 8: _t(1, 8, 8, 48)}
    assert tiled_work("CONV_2D", [0, 1], [2], t, 32, "dense") == 64 * 9 * 32 * 32
    assert tiled_work("CONV_2D", [3, 4], [5], t, 32, "dense") == 64 * 9 * 8 * 32
    assert tiled_work("DEPTHWISE_CONV_2D", [3, 6], [5], t, 32, "dense") == 64 * 9 * 32
    assert tiled_work("CONV_2D", [0, 1], [2], t, 32, "none") == 64 * 9 * 3 * 32
    assert tiled_work("ADD", [8, 8], [8], t, 32, "dense", elementwise=False) == 64 * 48
    assert tiled_work("ADD", [8, 8], [8], t, 32, "dense") == 64 * 64


def test_channel_tile_modes_are_checked_and_priced(prep):
    obj = json.loads((device_profiles.PROFILE_DIR / "htp_npu.json").read_text())
    for bad in ({"convs": "some"}, {"elementwise": "yes"}):
        with pytest.raises(device_profiles.LatencyError, match="convs must be one of"):
            device_profiles.from_json({**obj, "channel_tile": {"channels": 32, "source": "x", **bad}}, "t")
    none = device_profiles.from_json({**obj, "channel_tile": {"channels": 32, "convs": "none", "elementwise": False,
                                                              "source": "x"}}, "t")
    pol = {l: "a8w8" for l in prep.layers}
    assert (cost_model.from_device_profile(prep, none, model="m", scale=1).predict_ms(pol)
            == pytest.approx(cost_model.from_device_profile(prep, _profile(None), model="m", scale=1).predict_ms(pol)))
