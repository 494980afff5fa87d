"""Every result JSON carries a provenance block: data (image names + pixel hash), package
versions, git commit, command, srdeploy version."""
import json
import re
import sys

import pytest

import models
from deploy import provenance
from deploy.commands import jobs, search_jobs
from deploy.commands.policy_jobs import convert_with_policy
from deploy.convert import per_layer
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource
from deploy.data import calibration, shipped
from deploy.data.io_convention import IOConvention
from deploy.latency import cost_model
from deploy.policy_search import oracle, session
from deploy.policy_search.space import make_groups
from models._keras import keras
from tests.conftest import run_tool

HW = (16, 16)


def _tiny() -> keras.Model:
    keras.utils.set_random_seed(3)
    x_in = keras.Input((*HW, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="head")(x_in)
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail",
                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))(x)
    x = keras.layers.Add(name="residual")([x, keras.layers.Concatenate(name="repeat")([x_in] * 4)])
    return keras.Model(x_in, models.layers.PixelShuffle(2, name="shuffle")(x))


@pytest.fixture(scope="module")
def src():
    return ModelSource("tiny", 2, _tiny(), IOConvention(), False, None)


def check_block(block: dict, roles: dict) -> None:
    assert set(block) == {"srdeploy", "command", "git", "packages", "data"}
    assert block["srdeploy"] == provenance.srdeploy_version()
    assert isinstance(block["command"], list) and block["command"]
    git = block["git"]
    assert git is None or (re.fullmatch(r"[0-9a-f]{40}", git["commit"]) and isinstance(git["dirty"], bool))
    for name in ("tf-keras", "ai-edge-litert", "tensorflow-model-optimization", "numpy"):
        assert block["packages"][name], name
    assert {"tensorflow", "tensorflow-cpu"} & set(block["packages"])
    assert {"ai-edge-quantizer", "litert-quantizer", "ai-edge-quantizer-nightly"} & set(block["packages"])
    assert set(block["data"]) == set(roles)
    for role, (source, images) in roles.items():
        d = block["data"][role]
        assert d["source"] == source and d["images"] == images and re.fullmatch(r"[0-9a-f]{64}", d["sha256"])


def test_block_has_versions_git_and_command():
    block = provenance.collect({"x": {"source": "s", "images": [], "sha256": "0" * 64}, "none": None})
    assert block["command"] == sys.argv and set(block["data"]) == {"x"}
    assert block["git"] is not None  # the test suite runs from a checkout


def test_outside_a_git_checkout_git_is_none(tmp_path):
    assert provenance.git_state(tmp_path) is None


def test_convert_report_names_the_shipped_calibration_photos(src, tmp_path):
    report = jobs.convert_model(src, "int8", tmp_path / "m.tflite", input_hw=HW)
    on_disk = json.loads((tmp_path / "m.json").read_text())
    assert on_disk["provenance"] == report["provenance"]
    calib = (shipped.source_label("calibration"), shipped.names("calibration"))
    check_block(on_disk["provenance"], {"calibration": calib})
    assert on_disk["provenance"]["data"]["calibration"]["sha256"] == \
        calibration.calibration_set(2, HW, convention=src.convention).sha256

    # a float model used no photos
    jobs.convert_model(src, "float", tmp_path / "f.tflite", input_hw=HW)
    check_block(json.loads((tmp_path / "f.json").read_text())["provenance"], {})

    # per-layer policy, with a user's calibration folder
    policy = tmp_path / "p.json"
    prep = per_layer.prepare(src.fixed(HW))
    policy.write_text(Policy.for_layers("tiny", 2, "a8w8", prep.layers).dumps())
    calib_dir = shipped.PHOTOS_DIR / "validation"  # any folder of photos
    rep = convert_with_policy(src, str(policy), tmp_path / "h.tflite", input_hw=HW, calib_dir=str(calib_dir),
                              calib_images=2)
    check_block(rep["provenance"], {"calibration": (str(calib_dir), sorted(shipped.names("validation"))[:2])})


def test_evaluate_json_names_its_images(src, tmp_path, hr_dir):
    jobs.convert_model(src, "float", tmp_path / "m.tflite", input_hw=HW)
    result = jobs.evaluate_tflite(tmp_path / "m.tflite", data_dir=str(hr_dir))
    jobs.save_result(result, str(tmp_path / "e.json"))
    out = json.loads((tmp_path / "e.json").read_text())
    assert {"mean", "bicubic", "images", "model", "scale", "convention", "dataset"} <= set(out)  # contract
    names = [i["name"] for i in out["images"]]
    check_block(out["provenance"], {"evaluation": (str(hr_dir), names)})


@pytest.fixture(scope="module")
def setup(src):
    prep = per_layer.prepare(src.model)
    calib = calibration.calibration_set(2, HW, n_images=2, patches_per_image=2)
    val = oracle.validation_set(2, HW, n_images=2, patches_per_image=2)
    orc = oracle.QualityOracle(prep, model="tiny", scale=2, calib=calib, val=val)
    cost = cost_model.from_device_profile(prep, "htp_npu", model="tiny", scale=2)
    groups = tuple(make_groups(prep.model, prep.layers))
    macs = {i.name: i.macs for i in per_layer.list_layers(prep)}
    return session.Setup(src, prep, groups, orc, cost, macs, "htp_npu")


def test_sensitivity_search_and_pareto_json_carry_it(setup, tmp_path):
    roles = {"calibration": (shipped.source_label("calibration"), shipped.names("calibration")[:2]),
             "validation": (shipped.source_label("validation"), shipped.names("validation")[:2])}
    sens = search_jobs.run_sensitivity(setup, tmp_path / "s.json", progress=False)
    check_block(json.loads((tmp_path / "s.json").read_text())["provenance"], roles)
    assert sens["report"]["provenance"]["data"]["validation"]["sha256"] == setup.oracle.val.sha256
    search_jobs.run_search(setup.with_run(budget_db=0.05, max_evals=4), tmp_path / "p.json", progress=False)
    check_block(json.loads((tmp_path / "p.search.json").read_text())["provenance"], roles)
    assert "provenance" not in json.loads((tmp_path / "p.json").read_text())  # the policy stays a policy
    search_jobs.run_pareto(setup.with_run(pareto_points=2), tmp_path / "f.json", progress=False)
    check_block(json.loads((tmp_path / "f.json").read_text())["provenance"], roles)


@pytest.mark.slow
def test_cli_convert_records_its_command_and_the_shipped_photos(tmp_path, random_weights):
    out = tmp_path / "m.tflite"
    r = run_tool("convert", "--model", "espcn", "--scale", "2", "--precision", "int8", "--input_size", "24x24",
                 "--weights", str(random_weights("espcn", 2)), "--out", str(out))
    assert r.returncode == 0, r.stderr
    block = json.loads((tmp_path / "m.json").read_text())["provenance"]
    check_block(block, {"calibration": (shipped.source_label("calibration"), shipped.names("calibration"))})
    assert block["command"][0].endswith("tools/convert.py") and block["command"][1:3] == ["--model", "espcn"]
