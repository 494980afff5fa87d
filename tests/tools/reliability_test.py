"""Issue 19: nothing a user owns is destroyed, no traceback on bad input, no exit 0 with a wrong
answer. Subprocess runs where the tool's own flag handling is the point; in-process otherwise."""
from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, run_tool


def _one_line_error(proc, pattern: str, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    err = [l for l in proc.stderr.strip().splitlines() if not l.startswith(("WARNING", "I0000", "E0000"))]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(err) == 1 and err[0].startswith("error: "), proc.stderr
    assert pattern in err[0], err[0]
    return err[0]


# ---- 7. flag values: the flags' own validators, exit 2, one line --------------------------------

_DRIVER = """
import contextlib, io, json, runpy, sys
sys.path.insert(0, {repo!r})
from absl import flags
from deploy.commands import flag_checks
out = {{}}
for tool, cases in json.loads(sys.argv[1]).items():
    before = set(flags.FLAGS)
    runpy.run_path(tool, run_name="flags_only")  # defines the tool's flags and validators
    for argv in cases:
        flags.FLAGS.unparse_flags()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                flag_checks._parse([tool] + argv)
                code = 0
            except SystemExit as e:
                code = e.code
        out.setdefault(tool, []).append([code, err.getvalue()])
    for name in set(flags.FLAGS) - before:  # the next tool defines its own
        delattr(flags.FLAGS, name)
print(json.dumps(out))
"""

FLAG_CASES = {
    "train": [(["--steps", "-5"], "--steps must be >= 1"), (["--patch", "0"], "--patch must be >= 8"),
              (["--batch", "0"], "--batch must be >= 1"), (["--scale", "-3"], "--scale must be >= 1"),
              (["--steps", "abc"], "invalid literal")],
    "convert": [(["--qat_steps", "-3"], "--qat_steps must be >= 0"),
                (["--qat_init", "mse"], "--qat_init says where --qat_steps' ranges start"),
                (["--calib_images", "0"], "--calib_images must be >= 1"),
                (["--input_size", "4096x4096"], "--input_size must be HxW with sides 8..1024")],
    "evaluate": [(["--num_threads", "0"], "--num_threads must be >= 1"), (["--scale", "-3"], "--scale must be >= 1")],
    "search_policy": [(["--val_images", "0"], "--val_images must be >= 1"),
                      (["--calib_images", "0"], "--calib_images must be >= 1")],
    "upscale": [(["--tile", "3x3"], "--tile must be HxW"), (["--blend", "-5"], "--blend must be >= 0"),
                (["--num_threads", "0"], "--num_threads must be >= 1"),
                (["--wide_fraction", "2"], "between 0 and 1")],
    "adb_bench": [(["--trials", "0"], "--trials must be >= 1"), (["--num_threads", "0"], "--num_threads must be >= 1"),
                  (["--adb_server_port", "70000"], "TCP port"), (["--no_such_flag"], "Unknown command line flag")],
}


def test_bad_flag_values_are_one_line_exit_2():
    """Every tool's flags parsed exactly as its `main` parses them (flag_checks.main), one process
    for all tools (a TensorFlow import each would cost minutes on 2 cores)."""
    tools = {str(REPO / "tools" / f"{t}.py"): [argv for argv, _ in c] for t, c in FLAG_CASES.items()}
    p = subprocess.run([sys.executable, "-c", _DRIVER.format(repo=str(REPO)), json.dumps(tools)],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    for tool, cases in FLAG_CASES.items():
        for (argv, why), (code, err) in zip(cases, got[str(REPO / "tools" / f"{tool}.py")]):
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and why in lines[0], (
                tool, argv, err)


def test_adb_bench_trials_zero_as_a_user_runs_it():
    _one_line_error(run_tool("adb_bench", "--trials", "0", "--device", "desktop"), "--trials must be >= 1")


# ---- 1. the output-path rule -------------------------------------------------------------------

def test_check_outputs_rule(tmp_path):
    from deploy._files import atomic_write, check_outputs
    from deploy.errors import UserInputError
    model = tmp_path / "m.tflite"
    model.write_bytes(b"model")
    with pytest.raises(UserInputError, match="also an input"):
        check_outputs([tmp_path / "." / "m.tflite"], [model], overwrite=True)
    with pytest.raises(UserInputError, match="written twice"):
        check_outputs([tmp_path / "a.json", tmp_path / "a.json"])
    with pytest.raises(UserInputError, match="is a directory"):
        check_outputs([tmp_path], overwrite=True)
    with pytest.raises(UserInputError, match="exists; pass overwrite=True"):
        check_outputs([model])
    with pytest.raises(UserInputError, match="is a file, not a directory"):
        check_outputs([model / "x.json"])
    check_outputs([model, None, tmp_path / "new.json"], overwrite=True)
    d = tmp_path / "dir"
    d.mkdir()
    with pytest.raises(UserInputError, match="is a directory"):
        atomic_write(d, "x")
    with pytest.raises(ZeroDivisionError):  # an error mid-write: no temp file left, target untouched
        atomic_write(model, types.SimpleNamespace(encode=lambda: 1 / 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "m.tflite"] and model.read_bytes() == b"model"


@pytest.fixture(scope="module")
def x2_tflite(tmp_path_factory, random_weights):
    """A float ESPCN x2 .tflite with its report, converted in-process (no subprocess)."""
    from deploy.commands import jobs
    from deploy.convert import sources
    out = tmp_path_factory.mktemp("m") / "m.tflite"
    jobs.convert_model(sources.resolve("espcn", 2, weights=str(random_weights("espcn", 2))), "float", out,
                       input_hw=(16, 16))
    return out


def test_evaluate_json_never_over_the_model_or_an_existing_file(tmp_path, x2_tflite):
    from deploy.commands import jobs
    from deploy.errors import UserInputError
    model = tmp_path / "m.tflite"
    model.write_bytes(x2_tflite.read_bytes())
    _one_line_error(run_tool("evaluate", "--tflite", str(model), "--json", str(model), "--overwrite"),
                    "is also an input")  # as a user runs it: checked before the evaluation
    assert model.read_bytes() == x2_tflite.read_bytes()
    mine = tmp_path / "policy.json"
    mine.write_text("{}")
    with pytest.raises(UserInputError, match="exists; pass overwrite=True"):
        jobs.check_result_path(str(mine), (str(model),))
    with pytest.raises(UserInputError, match="is a directory"):
        jobs.check_result_path(str(tmp_path), (str(model),), overwrite=True)
    assert mine.read_text() == "{}" and not [p for p in tmp_path.iterdir() if "tmp" in p.name]


def test_convert_outputs_never_collide_or_replace_unasked(tmp_path, random_weights):
    from deploy.commands import jobs
    from deploy.convert import sources
    from deploy.errors import UserInputError
    _one_line_error(run_tool("convert", "--model", "espcn", "--scale", "2", "--precision", "float",
                             "--input_size", "16x16", "--out", str(tmp_path / "same.json")), "written twice")
    assert not (tmp_path / "same.json").exists()
    src = sources.resolve("espcn", 2, weights=str(random_weights("espcn", 2)))
    (tmp_path / "c50.json").write_text("unrelated")
    with pytest.raises(UserInputError, match="c50.json exists"):
        jobs.convert_model(src, "float", tmp_path / "c50.tflite", input_hw=(16, 16))
    assert (tmp_path / "c50.json").read_text() == "unrelated" and not (tmp_path / "c50.tflite").exists()
    d = tmp_path / "d.tflite"
    d.mkdir()
    with pytest.raises(UserInputError, match="is a directory"):
        jobs.convert_model(src, "float", d, input_hw=(16, 16), overwrite=True)
    with pytest.raises(UserInputError, match="also an input"):
        jobs.convert_model(src, "float", random_weights("espcn", 2), input_hw=(16, 16), overwrite=True)
    assert not list(d.iterdir()) and not [p for p in tmp_path.iterdir() if "tmp" in p.name]


def test_policy_report_side_car_is_checked_too(tmp_path, random_weights):
    from deploy.commands import policy_jobs
    from deploy.convert import sources
    from deploy.convert.policy import Policy
    from deploy.errors import UserInputError
    policy = tmp_path / "hybrid.json"
    policy.write_text(Policy("espcn", 2, "a8w8").dumps())
    (tmp_path / "hybrid.tflite.json").write_text("mine")  # where the report goes (beside the policy)
    src = sources.resolve("espcn", 2, weights=str(random_weights("espcn", 2)))
    with pytest.raises(UserInputError, match="hybrid.tflite.json exists"):
        policy_jobs.convert_with_policy(src, str(policy), tmp_path / "hybrid.tflite", input_hw=(16, 16))
    with pytest.raises(UserInputError, match="also an input"):
        policy_jobs.convert_with_policy(src, str(policy), policy, input_hw=(16, 16), overwrite=True)
    assert (tmp_path / "hybrid.tflite.json").read_text() == "mine" and Policy.load(policy)


def test_upscale_never_over_its_input_or_policy(tmp_path, random_weights):
    from deploy.commands import upscale_jobs
    from deploy.convert import sources
    from deploy.errors import UserInputError
    img = tmp_path / "in.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(img)
    src = sources.resolve("espcn", 2, weights=str(random_weights("espcn", 2)))
    for out in (img, tmp_path / "in.json"):
        with pytest.raises(UserInputError):
            upscale_jobs.upscale_file(src, str(tmp_path / "in.json"), str(img), str(out.with_suffix(".png")),
                                      overwrite=True)
    assert Image.open(img).size == (20, 20)


# ---- 3. consistency checks ---------------------------------------------------------------------

def test_convert_policy_with_io_type_or_precision_is_refused(tmp_path):
    p = tmp_path / "p.json"
    p.write_text("{}")
    _one_line_error(run_tool("convert", "--model", "espcn", "--scale", "2", "--policy", str(p), "--io_type", "uint8",
                             "--out", str(tmp_path / "m.tflite")), "--io_type cannot be combined with --policy")
    assert not (tmp_path / "m.tflite").exists()


def _keras_x3(path: Path, n_out_channels: int = 27) -> Path:
    from models._keras import keras, tf
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(n_out_channels, 3, padding="same")(inp)
    keras.Model(inp, tf.nn.depth_to_space(x, 3)).save(path)
    return path


def test_scale_contradicting_a_users_model_is_refused(tmp_path):
    from deploy.convert.api import check_scale
    from deploy.convert.sources import resolve
    from deploy.errors import UserInputError
    m = _keras_x3(tmp_path / "x3.h5")
    assert check_scale(resolve(None, 3, keras_model=str(m))) == 3
    with pytest.raises(UserInputError, match="scale 2 contradicts x3, which upscales x3"):
        check_scale(resolve(None, 2, keras_model=str(m)))
    from deploy.convert.api import quantize
    with pytest.raises(UserInputError, match="which upscales x3"):  # the library refuses too
        quantize(resolve(None, 2, keras_model=str(m)), "float", input_size=(16, 16))


def test_non_sr_tflite_is_named_as_such(tmp_path):
    from models._keras import keras, tf
    inp = keras.Input((16, 16, 3), batch_size=1)
    model = keras.Model(inp, keras.layers.Conv2D(3, 3, strides=2, padding="same")(inp))  # downscales
    bad = tmp_path / "down.tflite"
    bad.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    from deploy.commands import jobs
    from deploy.data.io_convention import IOConvention
    from deploy.errors import UserInputError
    with pytest.raises(UserInputError, match="not an SR model"):
        jobs.evaluate_tflite(bad, convention=IOConvention())


def test_x1_model_writes_valid_json(tmp_path, hr_dir):
    from deploy.commands import jobs
    from deploy.data.io_convention import IOConvention
    from models._keras import keras, tf
    inp = keras.Input((16, 16, 3), batch_size=1)
    m = tmp_path / "x1.tflite"
    m.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, keras.layers.Activation("linear")(inp))).convert())
    r = jobs.evaluate_tflite(m, data_dir=hr_dir, convention=IOConvention())
    jobs.save_result(r, str(tmp_path / "e.json"))
    json.loads((tmp_path / "e.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_malformed_device_profile_is_one_line(tmp_path):
    from deploy.latency import device_profiles as dp
    base = json.loads((dp.PROFILE_DIR / "htp_npu.json").read_text())
    for key, value, why in (("requantize", 5, "'requantize' must be an object"), ("ops", ["x"], "'ops' must be an object"),
                            ("ops", {k: 5 for k in base["ops"]}, "malformed")):
        p = tmp_path / f"{key}.json"
        p.write_text(json.dumps({**base, key: value}))
        with pytest.raises(dp.LatencyError, match=why):
            dp.load_profile(p)


def test_train_bad_inputs_are_one_line(tmp_path):
    import models
    from deploy.data.images import DataError
    from deploy.training.trainer import TrainConfig, init_body_from, train
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DataError, match="is a file"):
        train(TrainConfig("espcn", 2, steps=1, run_dir=str(f)))
    with pytest.raises(DataError, match="patch must be >= 8"):
        train(TrainConfig("espcn", 2, patch=0))
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(models.ModelError, match="not a readable Keras weight file"):
        init_body_from(models.build("espcn", 2), str(corrupt))


def test_render_only_with_a_corrupt_manifest_keeps_the_report(tmp_path):
    from deploy.errors import UserInputError
    from deploy.report import build
    (tmp_path / "r" / "inputs").mkdir(parents=True)
    (tmp_path / "r" / "index.md").write_text("# good report\n")
    (tmp_path / "r" / "inputs" / "manifest.json").write_text("{corrupt")
    with pytest.raises(UserInputError, match="missing or corrupt"):
        build.render_only(tmp_path / "r")
    assert (tmp_path / "r" / "index.md").read_text() == "# good report\n"


# ---- 5. resumable sensitivity ------------------------------------------------------------------

class _Oracle:
    """Counts measurements; 'interrupted' by Ctrl-C at the `stop_at`-th."""
    model, scale, val = "m", 2, types.SimpleNamespace(to_json=lambda: {"images": ["a"]})

    def __init__(self, stop_at=None):
        self.evaluations, self.stop_at = 0, stop_at

    def uniform(self, p):
        return {l: p for l in "abcd"}

    def psnr(self, a):
        if self.stop_at is not None and self.evaluations == self.stop_at:
            raise KeyboardInterrupt
        self.evaluations += 1
        return 30.0 - sum(v == "a8w8" for v in a.values()) * 0.1 - (a["b"] == "a8w8") * 0.5

    def image_psnrs_many(self, assignments, evaluator=None):  # what sensitivity.measure asks, a chunk at a time
        return [np.array([self.psnr(a)]) for a in assignments]

    def score(self, images):
        return float(np.mean(images))


def test_sensitivity_keeps_measured_drops_through_ctrl_c(tmp_path):
    from deploy.policy_search.sensitivity import MeasuredCache, measure
    from deploy.policy_search.space import Group
    groups = tuple(Group((l,)) for l in "abcd")
    cache_file = tmp_path / ".s.json.measured.jsonl"
    with pytest.raises(KeyboardInterrupt):
        measure(_Oracle(stop_at=5), groups, {}, progress=False, cache=MeasuredCache(cache_file, "k1"))
    with open(cache_file, "ab") as f:
        f.write(b'{"key": "k1", "tag": "drop:d", "psn')  # torn by the kill
    rerun = _Oracle()
    sens = measure(rerun, groups, {}, progress=False, cache=MeasuredCache(cache_file, "k1"))
    assert rerun.evaluations == 2 + 2 * 4 - 5  # only what the first run had not measured
    full = measure(_Oracle(), groups, {}, progress=False)
    assert sens.drop_db == pytest.approx(full.drop_db) and sens.gain_db == pytest.approx(full.gain_db)
    other = _Oracle()  # other model / weights / validation set: another key, nothing reused
    measure(other, groups, {}, progress=False, cache=MeasuredCache(cache_file, "k2"))
    assert other.evaluations == 2 + 2 * 4


# ---- 6. bounded memory ------------------------------------------------------------------------

@pytest.mark.parametrize("channels", ["rgb", "y"])
def test_streamed_tiles_equal_the_whole_blend(channels):
    from deploy.data.io_convention import IOConvention
    from deploy.runtime import adaptive
    conv = IOConvention(channels, "0-1")
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (70, 53, 3), np.uint8)
    padded = adaptive.pad_to_tile(lr, (16, 16))
    grid = adaptive.plan(padded.shape[0], padded.shape[1], (16, 16), 2, 2)
    fast = lambda t: np.repeat(np.repeat(t[..., :conv.n_channels] / 255.0, 2, 0), 2, 1) * 0.9  # noqa: E731
    wide = lambda t: np.repeat(np.repeat(t[..., :conv.n_channels] / 255.0, 2, 0), 2, 1)  # noqa: E731
    chosen = rng.random(grid.shape) < 0.5
    outs = adaptive.run_tiles(padded, grid, fast, ~chosen)
    outs.update(adaptive.run_tiles(padded, grid, wide, chosen))
    whole = adaptive.finish(adaptive.blend_tiles(grid, {ij: outs[ij] for ij in grid.indices()}, 2), padded,
                            lr.shape[:2], 2, conv)
    ticks = []
    streamed = adaptive.stream_tiles(padded, grid, fast, wide, chosen, 2, lr.shape[:2], conv,
                                     on_tile=lambda d, n: ticks.append((d, n)))
    assert streamed.shape == whole.shape == (140, 106, 3)
    assert np.abs(streamed.astype(int) - whole.astype(int)).max() <= 1 and (streamed != whole).mean() < 1e-3
    assert ticks[-1] == (grid.shape[0] * grid.shape[1],) * 2


def test_float_keras_runner_tiles_big_images_exactly(random_weights):
    import models
    from deploy.evaluation.runners import KerasRunner
    from models.complexity import receptive_radius
    m = models.build("espcn", 2, weights=str(random_weights("espcn", 2)))
    lr = np.random.default_rng(1).integers(0, 256, (150, 170, 3), np.uint8)
    whole = KerasRunner(m, 2)(lr)
    tiled = KerasRunner(m, 2, radius=receptive_radius(m), tile=64)(lr)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1 and (whole != tiled).mean() < 1e-3
