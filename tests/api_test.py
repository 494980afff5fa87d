"""The README's "Python API" example, run on the shipped ESPCN x3 at a tiny input size."""
from __future__ import annotations

import json

import pytest

import deploy
from deploy.convert.tflite_io import make_interpreter, summarize


@pytest.fixture(scope="module")
def src():
    return deploy.load_model("espcn", scale=3)


@pytest.fixture(scope="module")
def quantized(src, hr_dir):
    policy = deploy.Policy.uniform(src, "a8w8").with_layers({"conv3": "a16w8"})
    # mse ranges: per-tensor min/max int8 of the retrained ESPCN's tanh layers loses ~5 dB on these photos (issue 29)
    return deploy.quantize(src, policy, deploy.QuantizeConfig(calib_images=3, ptq="mse"), input_size=(16, 16),
                           calib_dir=hr_dir)


def test_quantize_returns_a_frozen_verified_per_layer_model(quantized):
    assert quantized.report["verified"] is True
    with pytest.raises(Exception):
        quantized.report["verified"] = False  # read-only view
    convs = [o for o in summarize(make_interpreter(quantized.tflite_bytes, delegates=False)).ops
             if o.op == "CONV_2D"]
    assert [c.output_dtypes[0] for c in convs] == ["int8", "int8", "int16"]


def test_save_then_evaluate_by_path_equals_evaluate_in_memory(src, quantized, tmp_path, hr_dir):
    path = quantized.save(tmp_path / "m.tflite")
    assert json.loads((tmp_path / "m.json").read_text())["precision"] == "policy"
    with pytest.raises(FileExistsError):
        quantized.save(tmp_path / "m.tflite")
    on_disk = deploy.evaluate(path, data=hr_dir)
    in_memory = deploy.evaluate(quantized, data=hr_dir)
    assert on_disk.to_json()["mean"] == in_memory.to_json()["mean"]
    reference = deploy.evaluate(src, data=hr_dir)  # the float Keras model, whole images
    assert 0 < reference.mean["psnr_y"] - on_disk.mean["psnr_y"] < 3.0  # int8 costs, but not the image
    # every result records the EvalConfig it was made with, and the config reads back from it
    config = deploy.EvalConfig(num_threads=1)
    saved = json.loads(deploy.evaluate(path, data=hr_dir, config=config).save(tmp_path / "e.json").read_text())
    assert saved["config"] == config.to_json() and deploy.EvalConfig.from_json(saved["config"]) == config
    assert in_memory.to_json()["config"] == reference.to_json()["config"] == deploy.EvalConfig().to_json()


def test_uniform_precisions_and_a_contradicting_scale(src, tmp_path, hr_dir):
    config = deploy.QuantizeConfig(calib_images=3)
    q = deploy.quantize(src, "int8", config, input_size=(16, 16), calib_dir=hr_dir)
    assert q.report["precision"] == "int8"
    assert q.report["config"] == config.to_json() and q.report["config"]["calib_images"] == 3  # in its record
    assert deploy.quantize(src, "float", input_size=(16, 16)).report["config"] == deploy.QuantizeConfig().to_json()
    path = q.save(tmp_path / "u.tflite")
    with pytest.raises(deploy.SrdeployError, match="contradicts the model, which upscales x3"):
        deploy.evaluate(path, data=hr_dir, config=deploy.EvalConfig(scale=2))


def test_evaluate_reads_the_embedded_metadata_when_the_report_is_gone(src, tmp_path, hr_dir):
    q = deploy.quantize(src, "float", input_size=(16, 16))
    path = q.save(tmp_path / "f.tflite")
    with_report = deploy.evaluate(path, data=hr_dir).to_json()["mean"]
    (tmp_path / "f.json").write_text("{ torn")  # a corrupt side-car is not trusted
    assert deploy.evaluate(path, data=hr_dir).to_json()["mean"] == with_report


def test_search_returns_a_policy_that_quantize_takes(src, hr_dir):
    config = deploy.SearchConfig(device_profile="htp_npu", input_size=(16, 16), calib_dir=hr_dir, calib_images=3,
                                 val_dir=hr_dir, val_images=2)
    best = deploy.search(src, config, budget_db=0.1)
    assert best.report["config"] == {**config.to_json(), "budget_db": 0.1}  # the run's options, in its record
    assert deploy.SearchConfig.from_json(best.report["config"]) == config.replace(budget_db=0.1)
    assert isinstance(best.policy, deploy.Policy) and best.candidates
    assert best.feasible == (best.psnr_y >= best.report["target_psnr_y"])
    q = deploy.quantize(src, best.policy, deploy.QuantizeConfig(calib_images=3), input_size=(16, 16), calib_dir=hr_dir)
    assert q.report["policy"] == best.policy.to_json()
    assert len(repr(best)) < 1000 and json.loads(json.dumps(best.to_json())) == best.to_json()


def test_bad_input_is_a_library_error_in_library_terms(src):
    with pytest.raises(deploy.SrdeployError, match="unknown precision"):
        deploy.quantize(src, "int4")
    with pytest.raises(deploy.SrdeployError, match="budget_db"):
        deploy.search(src, budget_db=-1)
    with pytest.raises(deploy.PolicyError, match="does not have"):
        deploy.quantize(src, deploy.Policy.uniform(src, "a8w8").with_layers({"tail": "a16w8"}),
                        input_size=(16, 16))


def test_the_three_calls_take_few_parameters_besides_a_config():
    """Issue 30: options travel as one frozen, checked config; the calls keep at most four
    other parameters (the rest is `deploy.SearchConfig` / `QuantizeConfig` / `EvalConfig`)."""
    import dataclasses
    import inspect
    for call, config in ((deploy.search, deploy.SearchConfig), (deploy.quantize, deploy.QuantizeConfig),
                         (deploy.evaluate, deploy.EvalConfig)):
        params = [p for p in inspect.signature(call).parameters if p != "config"]
        assert len(params) <= 4, (call.__name__, params)
        assert dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(config(), dataclasses.fields(config)[0].name, None)
    with pytest.raises(deploy.UserInputError, match="oracle must be one of"):
        deploy.SearchConfig(oracle="guess")
    c = deploy.SearchConfig(budget_db=0.1, reference="int16x8", budget_on="worst")
    assert c.reference == "a16w8" and deploy.SearchConfig.from_json(c.to_json()) == c


def test_sensitivity_and_front_are_library_calls_with_frozen_results(src, hr_dir, tmp_path):
    """Issue 30: the `--sensitivity` / `--pareto` workflows as `(source, config) -> frozen result`,
    saved whole (JSON + PNG), the config in the record."""
    import dataclasses
    config = deploy.SearchConfig(input_size=(16, 16), calib_dir=hr_dir, calib_images=2, val_dir=hr_dir,
                                 val_images=2, pareto_points=2)
    sens = deploy.measure_sensitivity(src, config)
    assert len(repr(sens)) < 1000 and sens.report["config"] == config.to_json()
    assert len(sens.sensitivity.drop_db) == len(sens.report["layers"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        sens.report = {}
    sens.save(tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text())["kind"] == "sensitivity"
    assert (tmp_path / "s.png").stat().st_size > 0
    front = deploy.pareto_front(src, config.replace(sensitivity_file=str(tmp_path / "s.json")))
    assert len(repr(front)) < 1000 and any(p["on_front"] for p in front.report["points"])
    front.save(tmp_path / "f.json")
    assert (tmp_path / "f.png").is_file() and json.loads((tmp_path / "f.json").read_text())["kind"] == "pareto"


def test_convert_file_is_convert_py_as_a_call(src, tmp_path):
    """deploy.convert_file: quantize + the model and its report written, outputs checked first."""
    config = deploy.QuantizeConfig(calib_images=3)
    q = deploy.convert_file(src, "float", tmp_path / "m.tflite", config, input_size=(16, 16))
    assert (tmp_path / "m.tflite").read_bytes() == q.tflite_bytes
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["config"] == config.to_json() and "provenance" in written and written == q.to_json()
    with pytest.raises(FileExistsError):
        deploy.convert_file(src, "float", tmp_path / "m.tflite", input_size=(16, 16))
    policy_file = tmp_path / "p.json"
    policy_file.write_text("{}")  # an input: the report goes to p.tflite.json, never over it
    deploy.convert_file(src, "float", tmp_path / "p.tflite", input_size=(16, 16), inputs=(policy_file,))
    assert policy_file.read_text() == "{}" and (tmp_path / "p.tflite.json").is_file()
    with pytest.raises(deploy.SrdeployError):  # never over an input
        deploy.convert_file(src, "float", policy_file, input_size=(16, 16), inputs=(policy_file,), overwrite=True)
