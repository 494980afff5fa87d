"""One model per source and precision, whichever entry point makes it (issue 29 item 1): convert.py,
the convert job, deploy.quantize, deploy.evaluate / evaluate.py's path and NPU emulation give the same
bytes and the same PSNR; the int8 route decision is cached by sha256; precision names are one vocabulary."""
import hashlib

import pytest

import deploy
from deploy.commands import jobs
from deploy.convert import precisions
from deploy.convert.policy import Policy
from deploy.evaluation import api as evaluation_api
from deploy.evaluation import int8_route
from tests.conftest import run_tool

HW = (16, 16)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_entry_point_makes_the_same_int8(tmp_path, hr_dir):
    src = deploy.load_model("espcn", 2)
    q = deploy.quantize(src, "int8", input_size=HW)
    info = q.report["int8_route"]
    assert set(info["validation_psnr_y"]) == set(int8_route.ROUTES)
    job = jobs.convert_model(src, "a8w8", tmp_path / "job.tflite", input_hw=HW)  # the alias, same model
    cli = run_tool("convert", "--model", "espcn", "--scale", "2", "--precision", "int8", "--input_size", "16x16",
                   "--out", str(tmp_path / "cli.tflite"))
    assert cli.returncode == 0, cli.stderr[-2000:]
    via_source = deploy.evaluate(src, hr_dir, deploy.EvalConfig(input_size=HW), precision="int8")
    npu = evaluation_api._quantize_for_npu(src, "a8w8", HW, "qualcomm:SM8650")
    shas = {"deploy.quantize": _sha(q.tflite_bytes), "convert job": job["sha256"],
            "convert.py": _sha((tmp_path / "cli.tflite").read_bytes()),
            "deploy.evaluate(source)": via_source.conversion["sha256"], "npu emulation": _sha(npu.tflite_bytes)}
    assert len(set(shas.values())) == 1, shas
    assert job["int8_route"]["chosen"] == info["chosen"] == via_source.conversion["int8_route"]["chosen"]
    via_file = deploy.evaluate(str(tmp_path / "cli.tflite"), hr_dir)
    via_model = deploy.evaluate(q, hr_dir)
    assert via_source.mean == via_file.mean == via_model.mean
    assert via_source.to_json()["conversion"]["precision"] == "int8"


def test_a16w8_is_one_model_too(hr_dir):
    src = deploy.load_model("fsrcnn", 2)
    q = deploy.quantize(src, "int16x8", input_size=HW)
    ev = deploy.evaluate(src, hr_dir, deploy.EvalConfig(input_size=HW), precision="a16w8")
    assert ev.conversion["sha256"] == _sha(q.tflite_bytes) and q.report["precision"] == "a16w8"
    assert ev.mean == deploy.evaluate(q, hr_dir).mean


def test_the_route_decision_is_cached_by_sha(tmp_path, monkeypatch):
    src = deploy.load_model("espcn", 2)
    monkeypatch.setattr(int8_route, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(int8_route, "_DECISIONS", {})
    calls = []
    real = int8_route.routes
    monkeypatch.setattr(int8_route, "routes", lambda *a, **k: calls.append(1) or real(*a, **k))
    kw = dict(input_size=HW, calib_images=2, val_images=2)
    assert int8_route.decided_route(src, **kw) is None  # nothing decided yet: nothing built either
    first = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, val_images=2), input_size=HW)
    assert len(calls) == 1 and len(list(tmp_path.glob("*.json"))) == 1
    assert int8_route.decided_route(src, **kw) == first.report["int8_route"]["chosen"] and len(calls) == 1
    second = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, val_images=2), input_size=HW)
    monkeypatch.setattr(int8_route, "_DECISIONS", {})  # another process: read from disk
    third = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, val_images=2), input_size=HW)
    assert len(calls) == 1
    assert first.tflite_bytes == second.tflite_bytes == third.tflite_bytes
    assert first.report["int8_route"] == third.report["int8_route"]
    other = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=3, val_images=2), input_size=HW)  # other inputs: decided anew
    assert len(calls) == 2 and len(list(tmp_path.glob("*.json"))) == 2
    assert other.report["int8_route"]["chosen"] in int8_route.ROUTES


def test_a_cached_decision_about_other_bytes_is_decided_again(tmp_path, monkeypatch):
    import json
    src = deploy.load_model("espcn", 2)
    monkeypatch.setattr(int8_route, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(int8_route, "_DECISIONS", {})
    deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, val_images=2), input_size=HW)
    (entry,) = tmp_path.glob("*.json")
    stale = json.loads(entry.read_text())
    entry.write_text(json.dumps({**stale, "sha256": "0" * 64}))
    monkeypatch.setattr(int8_route, "_DECISIONS", {})
    calls = []
    real = int8_route.routes
    monkeypatch.setattr(int8_route, "routes", lambda *a, **k: calls.append(1) or real(*a, **k))
    q = deploy.quantize(src, "int8", deploy.QuantizeConfig(calib_images=2, val_images=2), input_size=HW)
    assert calls == [1] and json.loads(entry.read_text())["sha256"] == _sha(q.tflite_bytes)


@pytest.mark.parametrize("name, uniform, layer", [("int8", "int8", "a8w8"), ("a8w8", "int8", "a8w8"),
                                                  ("int16x8", "a16w8", "a16w8"), ("A16W8", "a16w8", "a16w8"),
                                                  ("float", "float", "float")])
def test_one_vocabulary(name, uniform, layer):
    assert precisions.uniform(name) == uniform and precisions.layer(name) == layer
    assert Policy("m", 3, name, (("a", name),)) == Policy("m", 3, layer, (("a", layer),))


def test_unknown_precisions_are_one_line():
    with pytest.raises(deploy.UserInputError, match="unknown precision 'int4'; use one of .*int16x8"):
        precisions.uniform("int4")
    with pytest.raises(deploy.UserInputError, match="unknown precision 'fp16'"):
        precisions.layer("fp16")  # no per-layer fp16


def test_every_cli_takes_both_names(tmp_path):
    r = run_tool("predict_latency", "--model", "espcn", "--scale", "2", "--precision", "int8",
                 "--input_size", "16x16", "--device_profile", "snapdragon_8gen3")
    r16 = run_tool("predict_latency", "--model", "espcn", "--scale", "2", "--precision", "a8w8",
                   "--input_size", "16x16", "--device_profile", "snapdragon_8gen3")
    assert r.returncode == 0 and r16.returncode == 0, r.stderr[-1500:]
    assert r.stdout.strip().splitlines()[-1] == r16.stdout.strip().splitlines()[-1]
    w = run_tool("convert", "--model", "espcn", "--scale", "2", "--input_size", "16x16", "--write_policy", "int8")
    assert w.returncode == 0 and '"default": "a8w8"' in w.stdout, w.stderr[-1500:]
    s = run_tool("search_policy", "--reference", "int16x8", "--budget_db", "0.1")  # parsed, then --out missing
    assert s.returncode != 0 and "--out is required" in s.stderr and "flag --reference" not in s.stderr
