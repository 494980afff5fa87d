"""PTQ in the search: every candidate built with the options, and the policy converts to the model measured."""
import hashlib

import pytest

from deploy.convert import per_layer, quantizer
from deploy.convert.policy import Policy, PolicyError
from deploy.data import calibration
from deploy.errors import SrdeployError
from deploy.policy_search.config import SearchConfig
from tests.deploy.ptq_test import _chain_model


@pytest.fixture(scope="module")
def calib(hr_dir):
    return calibration.calibration_set(2, (16, 16), calib_dir=hr_dir, n_images=3, patches_per_image=2)


@pytest.mark.parametrize("label", ["mse+clip+cle", "p99.9+ar"])
def test_shared_grids_give_each_policy_the_bytes_converting_it_gives(calib, label):
    """The search quantizes every candidate from one PTQ pass (wide + int8 grids); that must be
    byte for byte what converting the same policy with the same options makes."""
    prep = per_layer.prepare(_chain_model())
    shared, wide, narrow, report = quantizer.ptq_for_search(prep, label, calib.patches, 1.0)
    assert report["label"] == label.replace("mse+clip+cle", "mse+cle+clip")
    policies = [Policy("custom", 2, "a8w8"), Policy("custom", 2, "a16w8"),
                Policy("custom", 2, "a8w8", (("b", "a16w8"),)), Policy("custom", 2, "a16w8", (("a", "a8w8"),))]
    digests = set()
    for pol in policies:
        converted, _ = per_layer.quantize_policy(prep, pol, calib, value_peak=1.0, ptq=label)
        searched, _ = per_layer.quantize_policy(shared, pol, calib, value_peak=1.0,
                                                qsv=quantizer.merge_grids(shared, pol, wide, narrow))
        assert hashlib.sha256(searched).hexdigest() == hashlib.sha256(converted).hexdigest(), pol
        digests.add(hashlib.sha256(searched).hexdigest())
    assert len(digests) == len(policies)
    assert quantizer.merge_grids(shared, policies[0], wide, None) is wide  # no PTQ: the plain route


def test_config_and_policy_carry_the_label_and_refuse_what_a_search_cannot_share():
    c = SearchConfig(ptq={"act_ranges": "mse", "cle": True})
    assert c.ptq == "mse+cle" and SearchConfig.from_json(c.to_json()) == c
    assert SearchConfig(ptq="minmax").ptq is None and "ptq" in c.measurement_json()
    for bad in ("mse+bc", "bc"):
        with pytest.raises(SrdeployError, match="bias correction or QAT"):
            SearchConfig(ptq=bad)
    with pytest.raises(SrdeployError, match="unknown ptq word"):
        SearchConfig(ptq="msee")
    pol = Policy("m", 3, "a8w8", ptq="clip+mse")
    assert pol.ptq == "mse+clip" and Policy.from_json(pol.to_json()) == pol and "ptq" in repr(pol)
    assert "ptq" not in Policy("m", 3).to_json()  # policies without PTQ keep their JSON
    with pytest.raises(PolicyError, match="policy ptq"):
        Policy.from_json({"model": "m", "scale": 3, "ptq": "nonsense"})


@pytest.mark.slow
def test_searched_policy_converts_to_the_model_the_search_measured(hr_dir, random_weights):
    import deploy
    from deploy.policy_search import api, session
    src = deploy.load_model("espcn", 2, weights=str(random_weights("espcn", 2)))
    config = SearchConfig(device_profile="htp_npu", input_size=(16, 16), calib_dir=hr_dir, calib_images=3,
                          val_dir=hr_dir, val_images=2, ptq="mse+clip", budget_db=0.1)
    s = session.setup(src, config)
    try:
        best = api.search_with_setup(s)
    finally:
        s.close()
    assert best.policy.ptq == "mse+clip" and best.report["ptq"]["act_ranges_summary"]["tensors_changed"] > 0
    q = deploy.quantize(src, best.policy, deploy.QuantizeConfig(calib_images=3), input_size=(16, 16),
                        calib_dir=hr_dir)
    assert q.report["ptq"]["label"] == "mse+clip"  # applied again from the policy
    judge = getattr(s.oracle, "judge", s.oracle)
    assert judge.measure(q.tflite_bytes) == pytest.approx(best.report["psnr_y"], abs=1e-4)
    with pytest.raises(SrdeployError, match="searched with ptq 'mse\\+clip'"):
        deploy.quantize(src, best.policy, deploy.QuantizeConfig(calib_images=3, ptq="p99.9"), input_size=(16, 16),
                        calib_dir=hr_dir)


@pytest.mark.slow
def test_cli_search_records_the_recipe_and_convert_applies_it(tmp_path, hr_dir, random_weights):
    import json
    from tests.conftest import run_tool
    common = ["--model", "espcn", "--scale", "2", "--weights", str(random_weights("espcn", 2)), "--input_size", "16x16",
              "--calib_dir", str(hr_dir), "--calib_images", "2"]
    out = tmp_path / "hybrid.json"
    r = run_tool("search_policy", *common, "--budget_db", "0.1", "--val_dir", str(hr_dir), "--val_images", "2",
                 "--max_evals", "4", "--act_ranges", "mse", "--clip_output", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["ptq"] == "mse+clip"
    r = run_tool("convert", *common, "--policy", str(out), "--out", str(tmp_path / "m.tflite"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "m.json").read_text())["ptq"]["label"] == "mse+clip"
    bad = run_tool("convert", *common, "--policy", str(out), "--act_ranges", "percentile",
                   "--out", str(tmp_path / "b.tflite"))
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "searched with ptq" in bad.stderr
    assert not (tmp_path / "b.tflite").exists()
    refused = run_tool("search_policy", *common, "--budget_db", "0.1", "--bias_correction", "--out", str(tmp_path / "x.json"))
    assert refused.returncode != 0 and "bias_correction" in refused.stderr
