"""Issue 31 (reliability, round two): the CLI cases, through each tool's real flags and `main`.

All CLI runs happen in ONE subprocess (`_DRIVER`: each tool's flags defined, parsed exactly as
`flag_checks.main` parses them, its `main` called, its flags removed for the next tool), so the
suite pays one TensorFlow import for ~30 cases. Library cases: tests/deploy/api_reliability_test.py.

| issue 31 case                                                      | case id here                     |
|--------------------------------------------------------------------|----------------------------------|
| evaluate --data d --json d/ok.png --overwrite destroys the photo   | eval_json_in_data                |
| convert --out inside --calib_dir                                   | convert_out_in_calib_dir         |
| two converts race for one --out (no --overwrite)                   | test_racing_converts_one_wins    |
| policy / sensitivity / profile JSON not UTF-8 (convert, search,    | convert_policy_latin1,           |
|   predict_latency --device_profile and --policy, upscale --policy) | search_sens_latin1, predict_*,   |
|                                                                    | upscale_policy_latin1            |
| misspelt policy key ("layer")                                      | convert_policy_layer_key         |
| 1x1 calibration photo                                              | convert_calib_1x1                |
| 1x1 image / 400x10 strip in --data, reported as (0x0)              | eval_1x1, eval_thin              |
| symlink loop as --tflite                                           | eval_symlink_loop                |
| policy JSON as --sensitivity_file                                  | search_policy_as_sens            |
| npu_compile --out naming a file; unwritable --out folder           | npu_out_is_file, npu_out_ro      |
| adb_bench --results / convert --out in an unwritable folder        | adb_results_ro, convert_out_ro   |
| a folder that is not a SavedModel as --keras_model                 | eval_keras_dir                   |
| a classifier TFLite given to evaluate                              | eval_classifier                  |
| upscale --threshold nan                                            | upscale_threshold_nan            |
| evaluate --tflite M --precision a16w8 (ignored)                    | eval_precision_with_tflite       |
| predict_latency --tflite M --precision / --precision with --policy | predict_tflite_precision,        |
|                                                                    | predict_policy_precision         |
| search_policy --budget_db with --pareto                            | search_budget_with_pareto        |
| a stray positional word (convert ... a16w8)                        | convert_stray_word, eval_stray   |
| --calib_images 100000                                              | convert_calib_images_too_many    |
| evaluate --num_threads 100000 blames the model                     | eval_num_threads                 |
| predict_latency --precision int4 / --scale 3.5: two lines, exit 1  | predict_int4, predict_scale_3_5  |
| --cache_dir naming a file                                          | upscale_cache_dir_file           |
| an invalid --adb_host refused only after converting a model        | adb_bad_host                     |
| upscale accepts GIF (evaluate and convert refuse it)               | upscale_gif                      |
| conflicting flags declared beside the flags (upscale, convert)     | upscale_threshold_without_adaptive |
| float ESPCN under --npu_emulate 8 dB below the CPU, no warning     | tests/deploy/npu_warning_test.py |
|   (why: bench/npu_float_probe.py)                                  |                                  |
| one 6000x4000 photo in evaluate peaks at 3.8 GB                    | tests/deploy/streaming_test.py   |
| upscale ignores EXIF rotation, drops alpha silently                | test_upscale_input_orientation_and_alpha |
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO

_DRIVER = """
import contextlib, io, json, os, runpy, sys, traceback
sys.path.insert(0, {repo!r})
from absl import flags
from deploy.commands import flag_checks
out = {{}}
for case, tool, argv in json.loads(open(sys.argv[1]).read()):
    path = os.path.join({repo!r}, "tools", tool + ".py")
    before = set(flags.FLAGS)
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        try:
            ns = runpy.run_path(path, run_name="flags_only")  # the tool's flags and validators
            rest = flag_checks._parse([path] + argv)
            code = ns["main"](rest) or 0
        except SystemExit as e:
            code = e.code
        except BaseException:
            traceback.print_exc()
            code = 1
    flags.FLAGS.unparse_flags()
    for name in set(flags.FLAGS) - before:
        delattr(flags.FLAGS, name)
    out[case] = [code, err.getvalue(), std.getvalue()]
print(json.dumps(out))
"""


def _unwritable(tmp: Path) -> Path:
    """A folder this process cannot create files in (root ignores mode bits; /proc/1 it cannot)."""
    if os.geteuid() == 0:
        return Path("/proc/1")
    d = tmp / "ro"
    d.mkdir(exist_ok=True)
    d.chmod(0o555)
    return d


@pytest.fixture(scope="module")
def files(tmp_path_factory, random_weights) -> dict[str, Path]:
    """What the cases need: a tiny ESPCN x2 (float .tflite + weights), photo folders, bad JSONs."""
    from deploy.commands import jobs
    from deploy.convert import sources
    from deploy.convert.policy import Policy
    from models._keras import keras, tf
    t = tmp_path_factory.mktemp("r2")
    w = random_weights("espcn", 2)
    f = {"t": t, "weights": w, "model": t / "m.tflite", "ro": _unwritable(t)}
    jobs.convert_model(sources.resolve("espcn", 2, weights=str(w)), "float", f["model"], input_hw=(16, 16))
    inp = keras.Input((16, 16, 3), batch_size=1)
    head = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(inp))
    f["classifier"] = t / "classifier.tflite"
    f["classifier"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, head)).convert())
    for name, shape in (("data", (48, 48, 3)), ("dot", (1, 1, 3)), ("thin", (10, 400, 3)), ("calib", (64, 64, 3))):
        (t / name).mkdir()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, shape, np.uint8)).save(t / name / "ok.png")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(t / "in.gif")
    (t / "calib_dot").mkdir()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(t / "calib_dot" / "dot.png")
    (t / "loop_a").symlink_to(t / "loop_b")
    (t / "loop_b").symlink_to(t / "loop_a")
    (t / "not_saved_model").mkdir()
    (t / "not_saved_model" / "notes.txt").write_text("x")
    f["latin1"] = t / "latin1.json"
    f["latin1"].write_bytes('{"model": "espcn", "scale": 2, "comment": "caf\xe9"}'.encode("latin-1"))
    f["layer_key"] = t / "layer_key.json"
    f["layer_key"].write_text(json.dumps({"model": "espcn", "scale": 2, "layer": {"conv1": "a16w8"}}))
    f["policy"] = t / "policy.json"
    f["policy"].write_text(Policy("espcn", 2, "a8w8").dumps())
    f["a_file"] = t / "a_file"
    f["a_file"].write_text("not a folder")
    return f


def _cases(f: dict[str, Path]) -> list[tuple[str, str, list[str], str]]:
    t, m, ro = f["t"], str(f["model"]), f["ro"]
    src = ["--model", "espcn", "--scale", "2", "--weights", str(f["weights"])]
    return [
        ("eval_json_in_data", "evaluate", ["--tflite", m, "--data", str(t / "data"), "--json", str(t / "data" / "ok.png"),
                                           "--overwrite"], "an input folder of this command"),
        ("eval_precision_with_tflite", "evaluate", ["--tflite", m, "--precision", "a16w8"],
         "--precision cannot be combined with --tflite"),
        ("eval_stray", "evaluate", ["--tflite", m, "a16w8"], "unexpected argument 'a16w8'"),
        ("eval_classifier", "evaluate", ["--tflite", str(f["classifier"]), "--data", str(t / "data")],
         "not an SR image model"),
        ("eval_symlink_loop", "evaluate", ["--tflite", str(t / "loop_a"), "--data", str(t / "data")], "symlink loop"),
        ("eval_num_threads", "evaluate", ["--tflite", m, "--data", str(t / "data"), "--num_threads", "100000"],
         "num_threads 100000 is not usable here"),
        ("eval_1x1", "evaluate", ["--tflite", m, "--data", str(t / "dot")], "ok (1x1) is too small for x2"),
        ("eval_thin", "evaluate", ["--tflite", m, "--data", str(t / "thin")], "ok (400x10) is too small for x2"),
        ("eval_keras_dir", "evaluate", ["--keras_model", str(t / "not_saved_model"), "--scale", "2"],
         "is a folder but not a SavedModel"),
        ("convert_stray_word", "convert", [*src, "--out", str(t / "s.tflite"), "a16w8"], "unexpected argument 'a16w8'"),
        ("convert_policy_latin1", "convert", [*src, "--policy", str(f["latin1"]), "--input_size", "16x16",
                                              "--out", str(t / "p.tflite")], "is not UTF-8"),
        ("convert_policy_layer_key", "convert", [*src, "--policy", str(f["layer_key"]), "--input_size", "16x16",
                                                 "--out", str(t / "p.tflite")], "unknown key 'layer'"),
        ("convert_calib_images_too_many", "convert", [*src, "--precision", "a16w8", "--calib_images", "100000",
                                                      "--out", str(t / "c.tflite")],
         "--calib_images 100000: the shipped calibration set has"),
        ("convert_calib_1x1", "convert", [*src, "--precision", "a16w8", "--input_size", "16x16", "--calib_dir",
                                          str(t / "calib_dot"), "--out", str(t / "c.tflite")], "dot (1x1) is too small"),
        ("convert_out_in_calib_dir", "convert", [*src, "--precision", "a16w8", "--calib_dir", str(t / "calib"),
                                                 "--out", str(t / "calib" / "ok.png"), "--overwrite"],
         "an input folder of this command"),
        ("convert_out_ro", "convert", [*src, "--precision", "float", "--out", str(ro / "m.tflite")],
         f"cannot write in {ro}"),
        ("search_policy_as_sens", "search_policy", [*src, "--budget_db", "0.1", "--sensitivity_file", str(f["policy"]),
                                                    "--out", str(t / "h.json")], "is a policy, not a --sensitivity result"),
        ("search_sens_latin1", "search_policy", [*src, "--budget_db", "0.1", "--sensitivity_file", str(f["latin1"]),
                                                 "--out", str(t / "h.json")], "is not UTF-8"),
        ("search_budget_with_pareto", "search_policy", [*src, "--budget_db", "0.1", "--pareto", "--out",
                                                        str(t / "f.json")], "--budget_db only applies to a search"),
        ("predict_tflite_precision", "predict_latency", ["--tflite", m, "--precision", "a16w8"],
         "--precision cannot be combined with --tflite"),
        ("predict_policy_precision", "predict_latency", ["--model", "espcn", "--precision", "a16w8", "--policy",
                                                         str(f["policy"])], "--precision cannot be combined with --policy"),
        ("predict_int4", "predict_latency", ["--model", "espcn", "--precision", "int4"], "--precision"),
        ("predict_scale_3_5", "predict_latency", ["--model", "espcn", "--scale", "3.5"], "--scale"),
        ("predict_profile_latin1", "predict_latency", ["--model", "espcn", "--scale", "2", "--device_profile",
                                                       str(f["latin1"])], "is not UTF-8"),
        ("predict_policy_latin1", "predict_latency", ["--model", "espcn", "--scale", "2", "--policy",
                                                      str(f["latin1"])], "is not UTF-8"),
        ("upscale_threshold_nan", "upscale", [*src, "--policy", str(f["policy"]), "--input", str(t / "data" / "ok.png"),
                                              "--out", str(t / "u.png"), "--adaptive", "--threshold", "nan"],
         "--threshold must be a finite number"),
        ("upscale_policy_latin1", "upscale", [*src, "--policy", str(f["latin1"]), "--input", str(t / "data" / "ok.png"),
                                              "--out", str(t / "u.png")], "is not UTF-8"),
        ("upscale_cache_dir_file", "upscale", [*src, "--policy", str(f["policy"]), "--input",
                                               str(t / "data" / "ok.png"), "--out", str(t / "u.png"),
                                               "--cache_dir", str(f["a_file"])], "is a file, not a folder"),
        ("npu_out_is_file", "npu_compile", ["--tflite", m, "--soc", "SM8650", "--out", str(f["a_file"])],
         "--out names a folder"),
        ("npu_out_ro", "npu_compile", ["--tflite", m, "--soc", "SM8650", "--out", str(ro / "npu")],
         f"cannot write in {ro}"),
        ("upscale_gif", "upscale", [*src, "--policy", str(f["policy"]), "--input", str(t / "in.gif"),
                                    "--out", str(t / "u.png")], "'.gif' is not a supported image type"),
        ("adb_bad_host", "adb_bench", ["--model", m, "--adb_host", "phone:99999"], "--adb_host must be HOST"),
        ("upscale_threshold_without_adaptive", "upscale", [*src, "--policy", str(f["policy"]), "--input",
                                                           str(t / "data" / "ok.png"), "--out", str(t / "u.png"),
                                                           "--threshold", "0.5"], "need --adaptive"),
        ("adb_results_ro", "adb_bench", ["--model", m, "--device", "desktop", "--results", str(ro / "r.jsonl")],
         f"cannot write in {ro}"),
    ]


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory):
    cases = _cases(files)
    spec = tmp_path_factory.mktemp("driver") / "cases.json"
    spec.write_text(json.dumps([[c, tool, argv] for c, tool, argv, _ in cases]))
    p = subprocess.run([sys.executable, "-c", _DRIVER.format(repo=str(REPO)), str(spec)],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


_IDS = [c[0] for c in _cases({k: Path("/x") for k in ("t", "model", "ro", "weights", "classifier", "latin1",
                                                       "layer_key", "policy", "a_file")})]


@pytest.mark.parametrize("case", _IDS)
def test_cli_case_is_one_line_exit_2(case, runs, files):
    why = {c: w for c, _, _, w in _cases(files)}[case]
    code, err, out = runs[case]
    lines = [l for l in err.strip().splitlines() if not l.startswith(("WARNING", "I0000", "E0000", "W0000"))]
    assert "Traceback" not in err, err
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert why in lines[0], lines[0]
    assert "wrote" not in out, out


def test_nothing_destroyed_or_written(runs, files):
    t = files["t"]
    assert (t / "data" / "ok.png").stat().st_size > 1000 and Image.open(t / "data" / "ok.png").size == (48, 48)
    assert Image.open(t / "calib" / "ok.png").size == (64, 64)
    assert files["a_file"].read_text() == "not a folder"
    for name in ("s.tflite", "p.tflite", "c.tflite", "h.json", "f.json", "u.png"):
        assert not (t / name).exists(), name
    assert not [p for p in t.rglob("*") if ".tmp" in p.name]


@pytest.mark.slow
def test_racing_converts_one_wins(tmp_path, files):
    """Two convert runs for one --out, no --overwrite: one writes, the other is refused (never a
    silent replace), whatever the timing; the survivor is a whole model with its own report."""
    from deploy.commands import jobs
    from deploy.convert import sources
    from deploy.errors import UserInputError
    src = sources.resolve("espcn", 2, weights=str(files["weights"]))
    out, results = tmp_path / "m.tflite", []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            results.append(jobs.convert_model(src, "float", out, input_hw=(16, 16)))
        except UserInputError as e:
            results.append(e)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, UserInputError)]
    assert len(ok) == 1 and len(refused) == 1 and "exists" in str(refused[0]), results
    assert out.stat().st_size == ok[0]["size_bytes"] and json.loads(out.with_suffix(".json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.tflite"]
