"""Memory terms of a device profile (activation_traffic, weight_traffic, io_traffic): what each op
moves is counted right, priced only by profiles that have the key, and the Keras and .tflite
paths price them alike."""
import json

import pytest

from deploy.latency import cost_model, device_profiles
from deploy.latency.htp_tiling import traffic_elements, weight_elements

RATES = {"activation_traffic": 2.0, "weight_traffic": 0.5, "io_traffic": 0.25}   # Gelem/s, every precision


def _t(*shape):
    return {"shape": list(shape)}


def test_traffic_counts_activations_tiled_and_weights_of_convs_only():
    t = {0: _t(1, 8, 8, 3), 1: _t(16, 3, 3, 3), 2: _t(16), 3: _t(1, 8, 8, 16), 4: _t(1, 8, 8, 16)}
    acts = {0, 3, 4}                                           # 1, 2: weights and bias
    assert traffic_elements([0, 1, 2], [3], t, acts, 32) == 64 * 32 + 64 * 32
    assert traffic_elements([3, 3], [4], t, acts, 1) == 3 * 64 * 16
    assert weight_elements("CONV_2D", [0, 1, 2], t) == 16 * 9 * 3
    assert weight_elements("ADD", [3, 3], t) == 0


@pytest.fixture(scope="module")
def prep(conv_add_prep):
    return conv_add_prep


def _profile(**keys):
    obj = json.loads((device_profiles.PROFILE_DIR / "htp_npu.json").read_text())
    for k, v in keys.items():
        obj[k] = {"a8w8": v, "a16w8": v, "float": v, "source": "test"}
    return device_profiles.from_json(obj, "t")


def _ms(elements: float, rate: float) -> float:
    return 1e3 * elements / (rate * 1e9)


def test_each_memory_term_adds_its_elements_at_its_rate_to_the_right_layer(prep):
    pol = {l: "a8w8" for l in prep.layers}
    base = cost_model.from_device_profile(prep, _profile(), model="m", scale=1)
    for key, rate in RATES.items():
        c = cost_model.from_device_profile(prep, _profile(**{key: rate}), model="m", scale=1)
        delta = {l: c.layer_ms[l]["a8w8"] - base.layer_ms[l]["a8w8"] for l in prep.layers}
        if key == "weight_traffic":     # c1: 16x3x3x3 weights, c2: 16x16
            want = {"c1": _ms(432, rate), "c2": _ms(256, rate), "add": 0.0}
        elif key == "io_traffic":       # input read by c1, output written by add
            want = {"c1": _ms(192, rate), "c2": 0.0, "add": _ms(1024, rate)}
        else:                           # only the elementwise add: two inputs + output, 16 -> 32 channels
            want = {"c1": 0.0, "c2": 0.0, "add": _ms(3 * 64 * 32, rate)}
        assert delta == pytest.approx(want, abs=1e-12), key
        assert c.predict_ms(pol) == pytest.approx(base.predict_ms(pol) + sum(want.values()))


def test_without_the_keys_or_with_null_rates_nothing_changes(prep):
    pol = {l: "float" for l in prep.layers}
    plain = cost_model.from_device_profile(prep, "htp_npu", model="m", scale=1).predict_ms(pol)
    nulls = _profile(**{k: None for k in RATES})
    assert cost_model.from_device_profile(prep, nulls, model="m", scale=1).predict_ms(pol) == plain


@pytest.mark.parametrize("key", sorted(RATES))
def test_a_bad_rate_or_no_source_is_refused(key):
    obj = json.loads((device_profiles.PROFILE_DIR / "htp_npu.json").read_text())
    with pytest.raises(device_profiles.LatencyError, match=key):
        device_profiles.from_json({**obj, key: {"a8w8": -1, "source": "x"}}, "t")
    with pytest.raises(device_profiles.LatencyError, match=key):
        device_profiles.from_json({**obj, key: {"a8w8": 1.0}}, "t")


def test_a_tflite_is_priced_with_the_same_memory_terms(prep, tmp_path):
    from deploy.latency.predict import predict_tflite
    path = tmp_path / "m.tflite"
    path.write_bytes(prep.float_tflite)
    plain = predict_tflite(path, _profile())["ms"]
    full = predict_tflite(path, _profile(**RATES))["ms"]
    want = _ms(432 + 256, RATES["weight_traffic"]) + _ms(192 + 1024, RATES["io_traffic"]) \
        + _ms(3 * 64 * 32, RATES["activation_traffic"])
    assert full - plain == pytest.approx(want)
