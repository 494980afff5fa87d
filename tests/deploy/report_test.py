"""The deployment report on a tiny real model: every section, re-rendering, and bad inputs.

One module-scoped build runs the real pipeline (convert float/int8/a16w8/policy, evaluate on real
photos, crops, desktop harness results through tools/adb_bench.py); the other tests copy its
folder, break inputs the way users do, and re-render from the files alone.
"""
import json
import shutil
import struct

import numpy as np
import pytest

import models
from deploy.data.io_convention import IOConvention
from deploy.report import build, crops, measured
from deploy.report.gather import GatherOptions, parse_profile
from deploy.report.inputs import MANIFEST, load, sha256_file
from deploy.convert.sources import ModelSource
from models._keras import keras
from tests.conftest import run_tool

POLICY = {"version": 1, "model": "tiny", "scale": 2, "default": "a8w8", "io_type": "float32",
          "layers": {"head": "a16w8", "tail": "a16w8"}}


def _tiny_source() -> ModelSource:
    keras.utils.set_random_seed(0)
    x_in = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="head")(x_in)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail")(x)
    m = keras.Model(x_in, models.layers.PixelShuffle(2, name="shuffle")(x))
    return ModelSource("tiny", 2, m, IOConvention(), False, None)


def _search_inputs(d, layers):
    """Tiny sensitivity and Pareto files in tools/search_policy.py's formats (test data)."""
    sens = {"kind": "sensitivity", "model": "tiny", "scale": 2, "validation": {"images": 3},
            "baseline": {"a16w8": 30.0, "a8w8": 29.0}, "evaluations": 2 * len(layers), "seconds": 1.0,
            "layers": [{"layer": n, "layers": [n], "macs": 1000 * (i + 1), "drop_db": -0.1 * (i + 1),
                        "gain_db": 0.05 * (i + 1) if i else None} for i, n in enumerate(layers)]}
    ours = {n: POLICY["layers"].get(n, "a8w8") for n in layers}
    other = {n: "a16w8" for n in layers}
    pts = [{"policy": {**POLICY, "layers": pol}, "psnr_y": q, "predicted_ms": ms, "a16w8_fraction": f,
            "on_front": True} for pol, q, ms, f in ((ours, 29.8, 1.0, 0.5), (other, 30.0, 2.0, 1.0))]
    pts.append({"policy": {**POLICY, "default": "a8w8", "layers": {}}, "psnr_y": 29.0, "predicted_ms": 1.2,
                "a16w8_fraction": 0.0, "on_front": False})
    front = {"kind": "pareto", "model": "tiny", "scale": 2, "device_profile": "desktop_xnnpack", "points": pts,
             "uniform": {"a8w8": {"psnr_y": 29.0, "predicted_ms": 0.9}, "a16w8": {"psnr_y": 30.0, "predicted_ms": 2.0}}}
    (d / "sens.json").write_text(json.dumps(sens))
    (d / "front.json").write_text(json.dumps(front))


@pytest.fixture(scope="module")
def built(tmp_path_factory, hr_dir):
    """A complete report of the tiny model: search inputs, then real desktop harness results.

    One real gather (the results file does not exist yet: skipped with a line), the harness
    benchmarks the report's own models, and the results are added the way a re-gather records
    them (copied in, hashed in the manifest) before rendering again from the files alone.
    """
    d = tmp_path_factory.mktemp("report")
    (d / "policy.json").write_text(json.dumps(POLICY))
    _search_inputs(d, ["head", "body", "tail", "shuffle"])
    opts = GatherOptions(policy=str(d / "policy.json"), sensitivity=str(d / "sens.json"),
                         pareto=str(d / "front.json"), results=str(d / "results.jsonl"), data_dir=str(hr_dir),
                         calib_dir=str(hr_dir), input_hw=(16, 16), calib_images=3, n_crops=2,
                         device_profiles=("desktop_xnnpack=serial:desktop,delegate:xnnpack",))
    out = d / "report"
    first = build.build(_tiny_source(), out, opts, log=lambda *_: None)
    first_text = first.index.read_text()
    models_dir = out / "inputs" / "models"
    r = run_tool("adb_bench", "--device=desktop", f"--model={models_dir / 'model_int8.tflite'}",
                 f"--model={models_dir / 'model_policy.tflite'}", "--delegate=xnnpack", "--trials=2",
                 "--num_runs=3", "--warmup_runs=1", "--cooldown_s=0", "--num_threads=2",
                 f"--results={d / 'results.jsonl'}")
    assert r.returncode == 0, r.stderr[-2000:]
    shutil.copyfile(d / "results.jsonl", out / "inputs" / "results.jsonl")
    m = json.loads((out / "inputs" / MANIFEST).read_text())
    m["skipped"], m["absent"] = [], {}
    m["files"]["results.jsonl"] = sha256_file(out / "inputs" / "results.jsonl")
    (out / "inputs" / MANIFEST).write_text(json.dumps(m))
    return d, build.render_only(out), first, first_text


def _copy(built, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(built[0] / "report", out)
    return out


def _rehash(out):
    """What a re-gather would have recorded: the manifest's hashes match the files again."""
    m = json.loads((out / "inputs" / MANIFEST).read_text())
    m["files"] = {k: sha256_file(out / "inputs" / k) for k in m["files"] if (out / "inputs" / k).is_file()}
    (out / "inputs" / MANIFEST).write_text(json.dumps(m))


def test_every_section_is_built_from_its_inputs(built):
    d, result = built[:2]
    out = d / "report"
    assert result.skipped == () and all(result.sections.values()), (result.skipped, result.sections)
    text = (out / "index.md").read_text()
    for header in ("## Quality", "## Policy", "## Sensitivity", "## Pareto front", "## Latency",
                   "## Visual crops", "## Model metadata", "## Reproduce"):
        assert header in text
    assert "_Not in this report" not in text
    inp = load(out / "inputs")
    ev = {v: json.loads((out / "inputs" / f"eval_{v}.json").read_text()) for v in ("float", "int8", "policy")}
    for v, e in ev.items():  # the quality table shows exactly the evaluate JSONs' numbers
        assert f"{e['mean']['psnr_y']:.2f} / {e['mean']['ssim_y']:.4f}" in text
    assert f"{ev['float']['bicubic']['psnr_y']:.2f}" in text
    pol = inp.models["policy"]
    assert {l["layer"]: l["actual"] for l in pol["layers"]}["head"] == "a16w8"
    assert f"{pol['requantize_ops']} int8↔int16 requantize ops" in text
    assert "the chosen policy is point 0" in text  # our policy is the first Pareto point
    # latency rows: both benchmarked models, matched by sha256, with the cost model beside them
    rows = measured.rows(inp.records, inp.model_shas(), inp.predictions)
    assert sorted(r.variant for r in rows) == ["int8", "policy"]
    assert all(r.predicted.endswith("(desktop_xnnpack)") for r in rows)
    assert "desktop_xnnpack" in text and pol["policy_sha256"] in text.split("## Model metadata")[1]
    for name in result.figures:  # legible, small PNGs
        data = (out / name).read_bytes()
        w, h = struct.unpack(">II", data[16:24])
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 200_000 and w >= 400 and h >= 200
    assert {"policy.png", "sensitivity.png", "pareto.png", "latency.png"} <= set(result.figures)
    assert sum(f.startswith("crop_") for f in result.figures) == 2
    m = json.loads((out / "inputs" / MANIFEST).read_text())
    assert m["files"] == {k: v for k, v in inp.hashes.items()}  # every input hashed
    assert any("tools/convert.py" in c and "--policy inputs/policy.json" in c for c in m["commands"])
    assert any(f"`{k}`" in text for k in m["files"])


def test_render_only_redraws_the_same_report(built, tmp_path):
    out = _copy(built, tmp_path)
    before = (out / "index.md").read_text()
    build.render_only(out)
    assert (out / "index.md").read_text() == before
    r = run_tool("report", "--render_only", f"--out={out}")
    assert r.returncode == 0 and "wrote" in r.stdout and "skipped" not in r.stdout, r.stdout + r.stderr


def test_missing_optional_inputs_say_so(built, tmp_path):
    first = built[2]  # gathered before the results file existed
    assert [s for s in first.skipped if "results.jsonl: file does not exist" in s] == list(first.skipped)
    assert "does not exist" in built[3].split("## Latency")[1]
    assert first.sections["quality"] and first.sections["crops"] and not first.sections["latency"]
    out = _copy(built, tmp_path)
    for rel in ("sensitivity.json", "pareto.json", "results.jsonl"):
        (out / "inputs" / rel).unlink()
    _rehash(out)
    result = build.render_only(out)
    text = (out / "index.md").read_text()
    assert result.skipped == () and text.count("_Not in this report") == 3
    assert not (result.sections["sensitivity"] or result.sections["pareto"] or result.sections["latency"])
    assert "tools/search_policy.py" in text and "tools/adb_bench.py" in text  # how to add them


def test_bad_inputs_are_skipped_one_line_each_and_the_rest_builds(built, tmp_path):
    out = _copy(built, tmp_path)
    inputs = out / "inputs"
    foreign = json.loads((inputs / "results.jsonl").read_text().splitlines()[0])
    foreign["model"] = {**foreign["model"], "sha256": "ab" * 32, "name": "other.tflite"}
    with open(inputs / "results.jsonl", "a") as f:
        f.write(json.dumps(foreign) + "\n{torn line\n")
    (inputs / "pareto.json").write_text("{not json")
    sens = json.loads((inputs / "sensitivity.json").read_text())
    (inputs / "sensitivity.json").write_text(json.dumps({**sens, "model": "xlsr", "scale": 3}))
    (inputs / "eval_a16w8.json").unlink()
    _rehash(out)  # as if re-gathered from these files; then edit one without re-gathering
    m = json.loads((inputs / MANIFEST).read_text())
    m["files"]["eval_a16w8.json"] = "0" * 64  # listed but missing
    (inputs / MANIFEST).write_text(json.dumps(m))
    ev = json.loads((inputs / "eval_int8.json").read_text())
    (inputs / "eval_int8.json").write_text(json.dumps({**ev, "seconds": 0}))  # sha differs now
    r = run_tool("report", "--render_only", f"--out={out}")
    assert r.returncode == 0, r.stderr
    skipped = [l for l in r.stdout.splitlines() if l.startswith("skipped: ")]
    expected = ["eval_a16w8.json: missing", "eval_int8.json: sha256 differs from the manifest",
                "pareto.json: not valid JSON", "sensitivity.json: the sensitivity is for xlsr x3",
                "1 line(s) are not JSON", "for other.tflite (sha256 abababababab) match none"]
    for e in expected:
        assert sum(e in l for l in skipped) == 1, (e, skipped)
    assert len(skipped) == len(expected)
    text = (out / "index.md").read_text()
    assert "**Skipped inputs**" in text and all(e in text for e in expected)
    assert "| int8 |" not in text.split("## Quality")[1].split("## Models")[0]  # int8 column gone
    assert "![latency](latency.png)" in text and "![per-layer precision](policy.png)" in text


def test_empty_results_and_missing_user_file(built, tmp_path, hr_dir):
    out = _copy(built, tmp_path)
    (out / "inputs" / "results.jsonl").write_text("")
    _rehash(out)
    result = build.render_only(out)
    assert any("results.jsonl: empty" in s for s in result.skipped) and not result.sections["latency"]
    assert "_Not in this report" in (out / "index.md").read_text().split("## Latency")[1]


def test_out_folder_is_never_half_written_or_clobbered(built, tmp_path):
    out = _copy(built, tmp_path)
    r = run_tool("report", "--model=xlsr", "--scale=3", f"--out={out}")
    assert r.returncode == 2 and "pass --overwrite" in r.stderr and r.stderr.count("\n") == 1
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a report folder"):
        build.build(_tiny_source(), tmp_path / "notes", GatherOptions(policy="/nonexistent.json"), overwrite=True)
    assert (tmp_path / "notes" / "mine.txt").is_file()
    with pytest.raises(ValueError, match="does not exist"):  # fails while gathering: nothing written
        build.build(_tiny_source(), tmp_path / "new", GatherOptions(policy=str(tmp_path / "nope.json")))
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new*"))


def test_hardest_window_finds_the_worst_crop():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    b = a.copy()
    b[30:40, 50:60] = 255 - b[30:40, 50:60]  # the only difference
    y, x = crops.hardest_window(a, b, 10, border=2)
    assert (y, x) == (30, 50)


def test_summaries_supersede_and_trials_fill_in():
    sha = "cd" * 32

    def rec(kind, job, **kw):
        return {"schema_version": 1, "kind": kind, "job": job, "backend": "android-benchmark_model",
                "device": {"serial": "R5", "label": "pixel8", "soc": "Tensor G3"}, "model": {"sha256": sha},
                "config": {"delegate": "gpu", "num_threads": 4}, **kw}
    trials = [rec("trial", "j1", trials=3, stats={"inference_avg_us": us}) for us in (1000.0, 1200.0, 1100.0)]
    old = rec("summary", "j2", median_inference_us=9e3, min_trial_inference_us=9e3, max_trial_inference_us=9e3)
    new = rec("summary", "j2", median_inference_us=2e3, min_trial_inference_us=1.5e3, max_trial_inference_us=2.5e3,
              trials=3, trials_ok=3, spread_pct=50.0, throttled=True,
              coverage={"delegate": "GPU", "nodes_delegated": 10, "nodes_total": 20, "fraction": 0.5})
    pred = {"available": True, "profiles": {"p": {"match": {"delegate": "gpu"}, "ms": {"int8": 1.5}}}}
    rows = measured.rows(trials + [old, new], {sha: "int8"}, pred)
    by_trials = next(r for r in rows if not r.from_summary)
    assert by_trials.median_ms == pytest.approx(1.1) and by_trials.trials == "3/3"
    summ = next(r for r in rows if r.from_summary)
    assert summ.median_ms == pytest.approx(2.0) and summ.throttled and "10/20 nodes (50%)" in summ.coverage
    assert summ.predicted == "1.50 (p)"
    assert measured.rows(trials, {sha: "int8"}, None)[0].predicted == measured.NO_COST_MODEL


def test_profile_match_syntax():
    assert parse_profile("htp_npu") == ("htp_npu", {"delegate": "qnn"})
    assert parse_profile("x=delegate:gpu,soc:SM8550") == ("x", {"delegate": "gpu", "soc": "SM8550"})
    with pytest.raises(ValueError, match="NAME=key:value"):
        parse_profile("x=gpu")
