"""The API as a new user meets it: short reprs, JSON-able and saveable results, latency from what
`deploy.quantize` returns, natural Policy arguments, one-SoC compiles (shipped ESPCN x3, 16x16)."""
from __future__ import annotations

import json

import pytest

import deploy

HW = (16, 16)


@pytest.fixture(scope="module")
def src():
    return deploy.load_model("espcn", scale=3)


@pytest.fixture(scope="module")
def quantized(src, hr_dir):
    return deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2), input_size=HW, calib_dir=hr_dir)


def _is_result(obj, tmp_path, name):
    assert len(repr(obj)) < 1000, repr(obj)[:300]
    json.dumps(obj.to_json())
    path = obj.save(tmp_path / name)
    assert path.is_file()
    with pytest.raises(FileExistsError):
        obj.save(tmp_path / name)


def test_results_are_small_in_repr_json_able_and_saveable(src, quantized, tmp_path, hr_dir):
    assert "bytes>" in repr(quantized) and "espcn" in repr(quantized)
    _is_result(quantized, tmp_path, "q.tflite")
    _is_result(deploy.evaluate(quantized, data=hr_dir), tmp_path, "e.json")
    assert len(repr(src)) < 1000 and "ModelSource(name='espcn', scale=3" in repr(src)
    policy = deploy.Policy.uniform(src, "a8w8").with_layers({f"l{i}": "a16w8" for i in range(200)})
    assert len(repr(policy)) < 1000


def test_predict_latency_takes_what_quantize_returns(src, quantized, tmp_path):
    as_quantized = deploy.predict_latency(quantized, device_profile="snapdragon_8gen3")
    assert as_quantized.ms > 0 and as_quantized.input_hw == HW and as_quantized.profile == "snapdragon_8gen3"
    _is_result(as_quantized, tmp_path, "lat.json")
    by_policy = deploy.predict_latency(src, "int8", input_size=HW)
    assert by_policy.profile == "htp_npu" and by_policy.precision == "a8w8" and by_policy.scale == 3
    policy = deploy.Policy.uniform(src, "a8w8").with_layers({"conv3": "a16w8"})
    mixed = deploy.predict_latency(policy, input_size=HW)
    assert mixed.ms > by_policy.ms  # an int16 layer costs more than int8 on the NPU profile
    assert deploy.predict_latency(src, policy, input_size=HW).ms == mixed.ms
    default = deploy.predict_latency(src)
    assert default.input_hw == (64, 64) and default.scale == 3
    with pytest.raises(deploy.UserInputError, match="priced as it is quantized"):
        deploy.predict_latency(quantized, "a16w8")


def test_policy_takes_a_dict_and_refuses_a_string_scale(tmp_path):
    p = deploy.Policy("espcn", 3, layers={"conv3": "int16x8"})
    assert p.layers == (("conv3", "a16w8"),) and p == deploy.Policy("espcn", 3, layers=(("conv3", "a16w8"),))
    with pytest.raises(deploy.PolicyError, match="scale must be a whole number") as e:
        deploy.Policy("espcn", "3")
    assert e.value.option == "scale"
    with pytest.raises(deploy.PolicyError, match="unknown precision") as e:
        deploy.Policy("espcn", 3, layers={"conv3": "int4"})
    assert e.value.layer == "conv3"
    path = p.save(tmp_path / "p.json")
    assert deploy.Policy.load(path) == p
    with pytest.raises(FileExistsError):
        p.save(path)


def test_npu_compile_takes_one_soc_as_a_string(quantized, tmp_path):
    pytest.importorskip("onnxruntime_qnn")
    with pytest.raises(deploy.SrdeployError, match="SM0000") as e:
        deploy.npu_compile(quantized, "SM0000")
    assert "'S'" not in str(e.value)
    compiled, = deploy.npu_compile(quantized, "SM8650")
    assert compiled.report.soc == "SM8650" and "bytes>" in repr(compiled)
    _is_result(compiled, tmp_path, "m_SM8650.tflite")
    assert json.loads((tmp_path / "m_SM8650.json").read_text())["soc"] == "SM8650"


def test_the_quantize_help_a_newcomer_reads():
    ann = deploy.quantize.__annotations__
    assert ann["return"] in ("QuantizedModel", deploy.QuantizedModel) and "source" in ann
    assert "Raises:" in deploy.quantize.__doc__ and "PolicyError" in deploy.quantize.__doc__
    for cls in (deploy.EvalResult, deploy.ModelSource, deploy.Policy, deploy.QuantizedModel,
                deploy.LatencyPrediction, deploy.CompiledModel, deploy.SearchOutcome):
        assert cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("), cls
