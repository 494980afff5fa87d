"""tools/train.py's library: batches, schedules, EMA, exact resume (in-process, SIGTERM, kill -9),
the run folder a background run leaves, and the recipes beside exported weights."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import models
from deploy.training.trainer import TrainConfig, sample_batch, train


def test_batches_are_aligned_and_deterministic():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (60, 60, 3)).astype(np.uint8)
    from deploy.data.imresize import bicubic_lr
    pairs = [(hr, bicubic_lr(hr, 3))]
    lr_a, hr_a = sample_batch(pairs, 4, 8, 3, np.random.default_rng([0, 5]))
    lr_b, hr_b = sample_batch(pairs, 4, 8, 3, np.random.default_rng([0, 5]))
    assert lr_a.shape == (4, 8, 8, 3) and hr_a.shape == (4, 24, 24, 3)
    np.testing.assert_array_equal(lr_a, lr_b)
    np.testing.assert_array_equal(hr_a, hr_b)


def test_train_resume_and_export(tmp_path, train_dir):
    run, wdir = tmp_path / "run", tmp_path / "weights"
    base = dict(model="espcn", scale=2, batch=2, patch=16, val_every=2, run_dir=str(run),
                train_dir=str(train_dir), weights_dir=str(wdir))
    first = train(TrainConfig(steps=2, export=False, **base))
    assert first.steps == 2 and json.loads((run / "ckpt" / "latest.json").read_text())["step"] == 2
    second = train(TrainConfig(steps=4, **base))  # resumes at step 2, does 2 more
    assert second.steps == 4 and np.isfinite(second.val_psnr_y)
    h5 = list(wdir.glob("espcn_x2-*.h5"))
    assert len(h5) == 1
    models.verify_weights(h5[0])
    recipe = json.loads((wdir / "espcn_x2.json").read_text())
    assert recipe["weights"] == h5[0].name and recipe["steps"] == 4
    assert recipe["stages"][-1]["to_step"] == 4 and recipe["command"].startswith("python tools/train.py")
    assert models.build("espcn", 2, weights=h5[0]).count_params() > 0


def test_resume_does_not_need_the_init_weights_again(tmp_path, train_dir):
    """A resumed run has its weights in the checkpoint; the --init_from file may be replaced meanwhile."""
    import dataclasses
    init = tmp_path / "espcn_x3.h5"
    models.build("espcn", 3).save_weights(str(init))
    cfg = TrainConfig("espcn", 2, steps=4, batch=2, patch=16, val_every=2, run_dir=str(tmp_path / "run"),
                      train_dir=str(train_dir), init_from=str(init), export=False)
    assert not train(dataclasses.replace(cfg, stop_at=2)).finished
    init.unlink()
    assert train(cfg).finished
    from deploy.errors import UserInputError
    with pytest.raises(UserInputError, match="is at step 4, beyond --steps 3"):  # never export 4 steps as 3
        train(dataclasses.replace(cfg, steps=3))


def test_init_from_another_scale_loads_the_body_only(tmp_path):
    from deploy.training.trainer import init_body_from
    x3 = models.build("xlsr", 3)
    path = tmp_path / "x3.h5"
    x3.save_weights(str(path))
    x4 = models.build("xlsr", 4)
    loaded = init_body_from(x4, str(path))
    assert "head_g0" in loaded and "tail" not in loaded  # tail: 27 vs 48 output channels
    np.testing.assert_array_equal(x4.get_layer("fuse").get_weights()[0], x3.get_layer("fuse").get_weights()[0])


def test_stages_record_extensions_but_merge_plain_resumes(tmp_path):
    from deploy.training.trainer import record_stage
    a, b = "python tools/train.py --steps 4000", "python tools/train.py --steps 8000"
    record_stage(tmp_path, a, 0, 4000)
    record_stage(tmp_path, a, 2000, 4000)  # interrupted and resumed with the same command
    stages = record_stage(tmp_path, b, 4000, 8000)  # extended: a warm restart
    assert [(s["command"], s["from_step"], s["to_step"]) for s in stages] == [(a, 0, 4000), (b, 4000, 8000)]
    assert json.loads((tmp_path / "stages.json").read_text()) == stages


def test_stages_of_a_run_dir_from_before_they_were_recorded(tmp_path):
    from deploy.training.trainer import record_stage
    stages = record_stage(tmp_path, "python tools/train.py --steps 9", 5, 9)
    assert [(s["from_step"], s["to_step"]) for s in stages] == [(0, 9)]


# ---- long-run machinery -------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
#: Every piece of state a resume must carry: warmup + step schedule (Adam's step), EMA, the
#: texture-weighted sampler (its reference detail), augmentation.
LONG = dict(model="espcn", scale=2, batch=2, patch=16, steps=30, val_every=10, ema=0.9, sampler="weighted",
            lr_schedule="step", warmup=5)


def _weights(path) -> list[np.ndarray]:
    return models.build("espcn", 2, weights=path).get_weights()


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(b)))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, train_dir):
    """The reference: LONG trained in one go."""
    d = tmp_path_factory.mktemp("ref")
    res = train(TrainConfig(run_dir=str(d / "run"), weights_dir=str(d / "w"), train_dir=str(train_dir), **LONG))
    return d, res


def test_stopped_and_resumed_run_ends_with_the_same_weights(tmp_path, train_dir, uninterrupted):
    ref_dir, ref = uninterrupted
    cfg = dict(run_dir=str(tmp_path / "run"), weights_dir=str(tmp_path / "w"), train_dir=str(train_dir), **LONG)
    stopped = train(TrainConfig(stop_at=13, **cfg))
    assert not stopped.finished and stopped.steps == 13 and stopped.weights is None
    assert not (tmp_path / "w").exists()
    resumed = train(TrainConfig(**cfg))
    assert resumed.finished and resumed.val_psnr_y == ref.val_psnr_y
    assert _same(resumed.weights, ref.weights)  # bit for bit: no TF op-determinism switch needed on CPU
    # stop_at is not part of the recipe: one stage, and the run's settings recorded
    recipe = json.loads((tmp_path / "w" / "espcn_x2.json").read_text())
    assert len(recipe["stages"]) == 1 and "stop_at" not in recipe["stages"][0]["command"]
    assert {k: recipe["config"][k] for k in ("ema", "sampler", "lr_schedule", "warmup", "augment")} == {
        "ema": 0.9, "sampler": "weighted", "lr_schedule": "step", "warmup": 5, "augment": True}
    # the run folder a background run is watched through
    history = json.loads((tmp_path / "run" / "val_history.json").read_text())
    assert [s for s, _ in history] == [0, 10, 13, 20, 30]  # 13: validated where it resumed
    assert [p for p in history if p[0] != 13] == json.loads((ref_dir / "run" / "val_history.json").read_text())
    assert (tmp_path / "run" / "val_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    progress = json.loads((tmp_path / "run" / "progress.json").read_text())
    assert progress["step"] == 30 and progress["eta_seconds"] == 0


def test_exported_weights_are_the_ema_average(uninterrupted):
    """EMA on: validation and export use the average, which the checkpoint keeps beside the raw weights."""
    from models._keras import tf
    ref_dir, ref = uninterrupted
    folder = ref_dir / "run" / "ckpt" / json.loads((ref_dir / "run" / "ckpt" / "latest.json").read_text())["dir"]
    reader = tf.train.load_checkpoint(str(folder / "ckpt"))
    keys = [k for k, _ in tf.train.list_variables(str(folder / "ckpt"))]
    ema = [reader.get_tensor(f"ema/shadow/{i}/.ATTRIBUTES/VARIABLE_VALUE") for i in range(len(_weights(ref.weights)))]
    exported = _weights(ref.weights)
    assert all(np.array_equal(e, x) for e, x in zip(ema, exported))
    raw = [reader.get_tensor(k) for k in keys if k.startswith("model/") and "OPTIMIZER" not in k]
    assert not any(any(np.array_equal(r, x) for r in raw if r.shape == x.shape) for x in exported)


def test_snapshot_writes_the_checkpoints_ema_weights_without_training(tmp_path, uninterrupted, train_dir):
    """tools/train.py --snapshot: a long run judged mid-way gets exactly what export would write."""
    from deploy.errors import UserInputError
    from deploy.training.trainer import snapshot
    ref_dir, ref = uninterrupted
    cfg = TrainConfig(run_dir=str(ref_dir / "run"), train_dir=str(train_dir), **LONG)
    assert snapshot(cfg, tmp_path / "snap.h5") == 30
    assert all(np.array_equal(a, b) for a, b in zip(_weights(str(tmp_path / "snap.h5")), _weights(ref.weights)))
    with pytest.raises(UserInputError, match="has no checkpoint yet"):
        snapshot(TrainConfig(run_dir=str(tmp_path / "new"), **LONG), tmp_path / "x.h5")


def test_export_checkpoint_ships_a_run_before_its_end(tmp_path, train_dir):
    """tools/train.py --export_checkpoint: the checkpoint's EMA weights become the zoo's file, and
    the recipe says at which step of which schedule the run stopped and how to remake it."""
    from deploy.training.trainer import export_checkpoint, snapshot
    cfg = TrainConfig(run_dir=str(tmp_path / "run"), weights_dir=str(tmp_path / "w"), train_dir=str(train_dir),
                      **LONG)
    import dataclasses
    assert not train(dataclasses.replace(cfg, stop_at=13)).finished
    step, weights = export_checkpoint(cfg)
    assert step == 13 and Path(weights).parent == tmp_path / "w"
    assert snapshot(cfg, tmp_path / "snap.h5") == 13
    assert _same(weights, str(tmp_path / "snap.h5"))
    models.verify_weights(Path(weights))
    recipe = json.loads((tmp_path / "w" / "espcn_x2.json").read_text())
    assert recipe["steps"] == 13 and recipe["stages"][-1]["to_step"] == 13
    assert recipe["stopped_early"]["at_step"] == 13 and recipe["stopped_early"]["schedule_steps"] == 30
    assert "--stop_at 13" in recipe["stopped_early"]["note"] and np.isfinite(recipe["val_psnr_y"])


def _start(run, train_dir):
    """tools/train.py with LONG's flags, checkpointing every step, in the background."""
    args = [sys.executable, str(REPO / "tools" / "train.py"), "--run_dir", str(run)]
    for k, v in LONG.items():
        args += [f"--{k}", str(v)]
    args += ["--train_dir", str(train_dir), "--ckpt_every", "1", "--noexport"]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_step(proc, run, step: int, timeout: float = 120) -> int:
    latest, t0 = run / "ckpt" / "latest.json", time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if latest.is_file() and json.loads(latest.read_text())["step"] >= step:
            return json.loads(latest.read_text())["step"]
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint at step {step}: {proc.communicate()[1][-2000:]}")


def test_sigterm_then_kill_9_then_resume_gives_the_same_weights(tmp_path, train_dir, uninterrupted):
    """The CLI as a background job: SIGTERM checkpoints and exits with one line; kill -9 between
    checkpoints loses nothing a resume cannot redo; the resumed run ends bit-identical."""
    _, ref = uninterrupted
    run = tmp_path / "run"
    proc = _start(run, train_dir)
    _wait_for_step(proc, run, 3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in err, err[-2000:]
    assert last.startswith("error: SIGTERM: stopped at step") and "rerun the same command" in last
    first_stop = json.loads((run / "ckpt" / "latest.json").read_text())["step"]
    assert first_stop < 30 and f"step {first_stop} of 30" in last

    proc = _start(run, train_dir)
    killed_after = _wait_for_step(proc, run, first_stop + 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert killed_after < 30, "the run finished before it could be killed"

    resumed = train(TrainConfig(run_dir=str(run), weights_dir=str(tmp_path / "w"), train_dir=str(train_dir), **LONG))
    assert _same(resumed.weights, ref.weights)
    assert len([p for p in (run / "ckpt").iterdir() if p.name.startswith("step-")]) == 2  # older ones pruned
    assert not list((run / "ckpt").glob(".*tmp*"))


def test_run_folder_from_before_recorded_settings_resumes_as_it_was_trained(tmp_path, train_dir):
    """A run folder written by the old trainer (tf.train.CheckpointManager, no settings): it resumes
    with the old defaults (cosine, no EMA, `top`, flips) and ends where an uninterrupted run does."""
    from models._keras import keras, tf
    from deploy.errors import UserInputError
    legacy = dict(model="espcn", scale=2, batch=2, patch=16, steps=12, val_every=6, train_dir=str(train_dir))
    ref = train(TrainConfig(run_dir=str(tmp_path / "ref"), weights_dir=str(tmp_path / "w_ref"), **legacy))
    run = tmp_path / "old"
    train(TrainConfig(run_dir=str(run), stop_at=6, export=False, **legacy))
    # rewrite the checkpoint in the old trainer's layout and objects
    model = models.build("espcn", 2)
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, 12, alpha=0.01))
    opt.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    prefix = str(run / "ckpt" / json.loads((run / "ckpt" / "latest.json").read_text())["dir"] / "ckpt")
    tf.train.Checkpoint(model=model, optimizer=opt, step=step).read(prefix).assert_existing_objects_matched()
    import shutil
    shutil.rmtree(run / "ckpt")
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model, optimizer=opt, step=step), str(run / "ckpt"),
                               max_to_keep=2).save(checkpoint_number=6)
    assert int(step.numpy()) == 6 and not (run / "ckpt" / "latest.json").exists()
    with pytest.raises(UserInputError, match="started with --ema 0.0"):
        train(TrainConfig(run_dir=str(run), ema=0.999, **legacy))
    resumed = train(TrainConfig(run_dir=str(run), weights_dir=str(tmp_path / "w"), **legacy))
    assert _same(resumed.weights, ref.weights)


def test_benchmark_test_sets_are_refused_and_folders_combine(tmp_path, train_dir):
    from deploy.errors import UserInputError
    from deploy.training.trainer import training_photos
    set5 = tmp_path / "benchmarks" / "Set5"
    set5.mkdir(parents=True)
    with pytest.raises(UserInputError, match="benchmark test set Set5"):
        training_photos(TrainConfig("espcn", 2, train_dir=f"{train_dir},{set5}"))
    tr, val, source = training_photos(TrainConfig("espcn", 2, train_dir=f"{train_dir},{train_dir}"))
    assert len(tr) == 4 and len(val) == 2 and source == f"{train_dir}+{train_dir}"


def test_schedules():
    from models._keras import keras
    from deploy.training.schedule import make_schedule
    legacy = keras.optimizers.schedules.CosineDecay(1e-3, 100, alpha=0.01)
    cos = make_schedule("cosine", 1e-3, 100)
    assert all(float(cos(s)) == float(legacy(s)) for s in (0, 1, 37, 99, 100))  # shipped recipes unchanged
    warm = make_schedule("cosine", 1e-3, 100, warmup=10)
    assert float(warm(0)) < float(warm(5)) < float(warm(10)) == pytest.approx(1e-3) and float(warm(100)) == pytest.approx(1e-5)
    step = make_schedule("step", 1e-3, 100)
    assert [float(step(s)) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])
    const = make_schedule("constant", 1e-3, 100, warmup=4)
    assert [float(const(s)) for s in (0, 3, 50)] == pytest.approx([2.5e-4, 1e-3, 1e-3])


#: sha256 of the (LR, HR) batches, steps 0-2, that the sampler every shipped recipe was trained with
#: draws on _half_flat_pairs (computed with that code, copied from the trainer before the sampler moved
#: to deploy/training/sampler.py; git show c896ab7:tests/deploy/train_test.py has the copy)
LEGACY_TOP_DIGEST = "6b55a60d137722c6d0e837b1b17d578962a30e7b4dffa008fcd27b18424ca6c8"


def _half_flat_pairs():
    from deploy.data.imresize import bicubic_lr
    rng = np.random.default_rng(1)
    hr = np.full((96, 192, 3), 128, np.uint8)
    hr[:, 96:] = rng.integers(0, 256, (96, 96, 3))  # right half: noise; left half: flat
    return [(hr, bicubic_lr(hr, 2)), (hr[:, ::-1].copy(), bicubic_lr(hr[:, ::-1].copy(), 2))]


def test_samplers():
    from deploy.training.sampler import detail, reference_detail, sample_batch
    pairs = _half_flat_pairs()
    digest = hashlib.sha256()
    for step in range(3):  # `top` draws exactly what the shipped recipes saw
        for a in sample_batch(pairs, 4, 16, 2, np.random.default_rng([0, step])):
            digest.update(np.ascontiguousarray(a).tobytes())
    assert digest.hexdigest() == LEGACY_TOP_DIGEST
    ref = reference_detail(pairs, 16, 0)

    def textured_share(kind):
        lrs = np.concatenate([sample_batch(pairs, 8, 16, 2, np.random.default_rng([0, s]), sampler=kind,
                                           ref_detail=ref)[0] for s in range(8)])
        return np.mean([detail(p * 255) > 1.0 for p in lrs])
    uniform, weighted = textured_share("uniform"), textured_share("weighted")
    assert weighted > uniform + 0.2 and 0.3 < uniform < 0.8
    # augment off: no flips/rotations (a left-to-right ramp stays increasing in every crop)
    grad = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (64, 1, 3))
    gp = [(grad, grad[::2, ::2])]
    lr, _ = sample_batch(gp, 8, 8, 2, np.random.default_rng(0), sampler="uniform", augment=False)
    assert np.all(np.diff(lr[..., 0], axis=2) > 0)
    lr, _ = sample_batch(gp, 8, 8, 2, np.random.default_rng(0), sampler="uniform", augment=True)
    assert not np.all(np.diff(lr[..., 0], axis=2) > 0)


def test_command_leaves_out_checkpoint_only_flags():
    from deploy.training.recipe import command_line
    assert command_line(["--model", "xlsr", "--stop_at", "5", "--ckpt_minutes=3", "--steps", "9", "--ckpt_every", "2"]) == (
        "python tools/train.py --model xlsr --steps 9")
