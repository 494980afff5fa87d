"""Training of zoo models: L1 loss, Adam, a learning-rate schedule, optional EMA of the weights,
texture-favouring random crops with flips/rotations, MATLAB-bicubic LR.

Long runs live in the background and get stopped (a session ends, SIGTERM, kill -9), so a run is
resumable to the step: checkpoints every `ckpt_every` steps or `ckpt_minutes` (whichever comes
first) hold the weights, Adam's state, the EMA weights and the sampler's state, and a resumed run
ends with exactly the weights of an uninterrupted one (tests/deploy/train_test.py proves it).
Rerunning the same command resumes (bit-exact on CPU without any determinism switch; on a GPU,
kernels that reduce in a nondeterministic order need `tf.config.experimental.enable_op_determinism`
for that). The settings that shape the result (schedule, warmup, EMA,
sampler, augmentation) are fixed when a run starts and kept in its checkpoints; a run folder from
before they were recorded resumes with what it was trained with (cosine, no EMA, `top`, flips).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from tqdm import tqdm

import models
from deploy.data import images
from deploy._files import atomic_write
from deploy.data import metrics
from deploy.data.imresize import bicubic_upscale, imresize
from deploy.errors import SrdeployError, UserInputError
from deploy.training.checkpoint import Ema, RunCheckpoints, StopRequest
from deploy.training.curve import Progress, ValCurve
from deploy.training.recipe import (command_line, export_weights, previous_seconds, read_stages, record_stage,
                                    save_seconds)
from deploy.training.sampler import SAMPLERS, Sampler, reference_detail, sample_batch
from deploy.training.schedule import SCHEDULES, make_schedule
from models._keras import keras, tf

__all__ = ["TrainConfig", "TrainResult", "TrainingStopped", "train", "sample_batch", "init_body_from",
           "record_stage", "export_weights", "resolve_settings", "validate", "set_threads", "snapshot",
           "export_checkpoint"]

#: Longer side of training photos is brought down to this (DIV2K's 2K); 5K wallpapers are soft
#: at the pixel level and would teach the nets to blur.
MAX_TRAIN_SIDE = 2040
DEFAULT_LR = {"edsr_baseline": 2e-4}
#: A new run's settings when not given; also what a run folder without recorded settings used.
DEFAULT_SETTINGS: dict[str, Any] = {"lr_schedule": "cosine", "warmup": 0, "ema": 0.0, "sampler": "top",
                                    "augment": True}
#: Benchmark test sets: never training data (their folder names, lower case).
BENCHMARK_SETS = {"set5", "set14", "b100", "bsd100", "bsds100", "urban100", "manga109"}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: str
    scale: int
    steps: int = 3000
    batch: int = 16
    patch: int = 48  # LR patch side
    lr: Optional[float] = None
    seed: int = 0
    val_every: int = 250
    ckpt_every: int = 250
    run_dir: Optional[str] = None
    train_dir: Optional[str] = None  # folder(s), comma-separated; default: the shipped photos
    full_size: bool = False  # the full-size Debian originals of the shipped photos (prepare_data.py)
    init_from: Optional[str] = None  # weights to start from (e.g. the x3 model for x4)
    export: bool = True
    weights_dir: Optional[str] = None  # default models/weights
    # Settings fixed for a run's life (None: the run's own, or DEFAULT_SETTINGS for a new run).
    lr_schedule: Optional[str] = None
    warmup: Optional[int] = None
    ema: Optional[float] = None
    sampler: Optional[str] = None
    augment: Optional[bool] = None
    ckpt_minutes: float = 10.0
    stop_at: Optional[int] = None  # checkpoint and stop at this step (rerun without it to go on)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR.get(self.model, 1e-3)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir or f"runs/{self.model}_x{self.scale}")


@dataclasses.dataclass(frozen=True)
class TrainResult:
    steps: int
    seconds: float
    val_psnr_y: float
    weights: Optional[str]
    finished: bool = True  # False: stopped at --stop_at, resumable


class TrainingStopped(SrdeployError):
    """SIGINT/SIGTERM stopped the run after writing a checkpoint; rerunning resumes it."""


def set_threads(n: int) -> None:
    """Limit TensorFlow to `n` intra-op and `n` inter-op threads: a background run on a shared
    machine takes one core, not all. Must run before TensorFlow executes its first op."""
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def _shrink(hr: np.ndarray) -> np.ndarray:
    side = max(hr.shape[:2])
    return imresize(hr, MAX_TRAIN_SIDE / side) if side > MAX_TRAIN_SIDE else hr


def _load_photos(files: Sequence[Path], scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for p in tqdm(files, desc="loading photos", leave=False):
        s = images.make_samples([(p.stem, _shrink(images.load_image(p)))], scale)[0]
        pairs.append((s.hr, s.lr))
    return pairs


def predict_uint8(model: keras.Model, lr: np.ndarray) -> np.ndarray:
    y = model(lr[None].astype(np.float32) / 255.0, training=False)[0].numpy()
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


def _validation_samples(files: Sequence[Path], scale: int) -> list[images.Sample]:
    return images.make_samples([(p.stem, images.textured_crop(_shrink(images.load_image(p)), 240))
                                for p in files], scale)


def validate(model: keras.Model, samples: Sequence[images.Sample], scale: int) -> float:
    return float(np.mean([metrics.psnr(predict_uint8(model, s.lr), s.hr, crop_border=scale)
                          for s in samples]))


def training_photos(cfg: TrainConfig) -> tuple[list[Path], list[Path], str]:
    """(train, validation, source) from the shipped photos or one or more folders (each holds its
    validation image out); a benchmark test set is refused."""
    dirs = [d.strip() for d in cfg.train_dir.split(",") if d.strip()] if cfg.train_dir else [None]
    train_files: list[Path] = []
    val_files: list[Path] = []
    sources = []
    for d in dirs:
        if d is not None:
            bench = [p for p in Path(d).resolve().parts if p.lower() in BENCHMARK_SETS]
            if bench:
                raise UserInputError(f"{d} looks like the benchmark test set {bench[-1]}: never train on a "
                                     "test set (use T91, General-100, BSD200, DIV2K or your own photos)")
        t, v, s = images.training_photos(d, full_size=cfg.full_size)
        train_files += t
        val_files += v
        sources.append(s)
    return train_files, val_files, "+".join(sources)


def resolve_settings(cfg: TrainConfig, saved: Optional[dict]) -> dict[str, Any]:
    """The run's settings: a new run's from `cfg` (defaults where None); a resumed run keeps its
    own (those it never recorded are the defaults it ran with) and refuses a different explicit one."""
    given = {k: getattr(cfg, k) for k in DEFAULT_SETTINGS if getattr(cfg, k) is not None}
    if saved is None:
        settings = {**DEFAULT_SETTINGS, **given}
    else:
        settings = {**DEFAULT_SETTINGS, **saved.get("settings", {})}
        clash = {k: v for k, v in given.items() if v != settings[k]}
        if clash:
            k = sorted(clash)[0]
            raise UserInputError(f"{cfg.run_path} was started with --{k} {settings[k]} (not {clash[k]}); "
                                 "resume with its own settings, or start a new --run_dir (--init_from its weights)")
    if settings["lr_schedule"] not in SCHEDULES:
        raise UserInputError(f"--lr_schedule must be one of {', '.join(SCHEDULES)}, not {settings['lr_schedule']}")
    if settings["sampler"] not in SAMPLERS:
        raise UserInputError(f"--sampler must be one of {', '.join(SAMPLERS)}, not {settings['sampler']}")
    if not 0 <= settings["ema"] < 1:
        raise UserInputError(f"--ema must be in [0, 1) (0 = off), not {settings['ema']}")
    if not 0 <= settings["warmup"] < cfg.steps:
        raise UserInputError(f"--warmup must be >= 0 and below --steps {cfg.steps}, not {settings['warmup']}")
    return settings


def _check(cfg: TrainConfig) -> None:
    for name, low in (("steps", 1), ("batch", 1), ("patch", 8), ("val_every", 1), ("ckpt_every", 1)):
        if getattr(cfg, name) < low:
            raise images.DataError(f"{name} must be >= {low}, not {getattr(cfg, name)}")
    if cfg.ckpt_minutes <= 0:
        raise UserInputError(f"ckpt_minutes must be > 0, not {cfg.ckpt_minutes}")
    if cfg.stop_at is not None and not 1 <= cfg.stop_at <= cfg.steps:
        raise UserInputError(f"stop_at must be in 1..steps ({cfg.steps}), not {cfg.stop_at}")
    if cfg.run_path.exists() and not cfg.run_path.is_dir():
        raise images.DataError(f"run dir {cfg.run_path} is a file; pass a folder (--run_dir) for checkpoints")


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) one model; export hash-named weights and their recipe when done."""
    _check(cfg)
    run = cfg.run_path
    checkpoints = RunCheckpoints(run)
    found = checkpoints.latest()
    settings = resolve_settings(cfg, found[1] if found else None)
    train_files, val_files, source = training_photos(cfg)
    pairs = _load_photos(train_files, cfg.scale)
    small = [p for p, (_, lr) in zip(train_files, pairs) if min(lr.shape[:2]) < cfg.patch]
    if small:
        raise images.DataError(f"{small[0]} is smaller than one LR patch ({cfg.patch}px at x{cfg.scale})")
    val = _validation_samples(val_files, cfg.scale)

    keras.utils.set_random_seed(cfg.seed)  # the same initial weights for the same command
    model = models.build(cfg.model, cfg.scale)
    if cfg.init_from and found is None:  # a resumed run has its weights (the file may be gone by now)
        init_body_from(model, cfg.init_from)
    opt = keras.optimizers.Adam(make_schedule(settings["lr_schedule"], cfg.learning_rate, cfg.steps,
                                              settings["warmup"]))
    opt.build(model.trainable_variables)  # slots exist before a restore: nothing is deferred
    ema = Ema(model, settings["ema"]) if settings["ema"] else None
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step_var, **({"ema": ema.module} if ema else {}))
    state = checkpoints.restore(ckpt)
    start_step = int(step_var.numpy())
    if start_step > cfg.steps:
        raise UserInputError(f"{run} is at step {start_step}, beyond --steps {cfg.steps}: pass --steps {start_step} "
                             "(or more, to extend it), or a new --run_dir")
    if state is not None:
        tqdm.write(f"resuming {cfg.model} x{cfg.scale} from step {start_step}")
    saved_sampler = (state or {}).get("sampler", {})
    ref = saved_sampler.get("ref_detail") or (reference_detail(pairs, cfg.patch, cfg.seed)
                                              if settings["sampler"] == "weighted" else 1.0)
    sampler = Sampler(pairs, cfg.batch, cfg.patch, cfg.scale, cfg.seed, settings["sampler"], settings["augment"], ref)
    run.mkdir(parents=True, exist_ok=True)
    resolved = {**dataclasses.asdict(cfg), **settings}
    atomic_write(run / "config.json", json.dumps(resolved, indent=2))
    stages = record_stage(run, command_line(), start_step, cfg.steps)

    @tf.function(reduce_retracing=True)
    def train_step(lr_b, hr_b):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(lr_b, training=True) - hr_b))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        if ema is not None:
            ema.update(opt.iterations)
        return loss

    def val_psnr_now() -> float:
        with _averaged(ema):
            return validate(model, val, cfg.scale)

    prev_seconds = float((state or {}).get("seconds", previous_seconds(run)))
    t0 = last_save = time.time()
    end = cfg.stop_at or cfg.steps
    curve = ValCurve(run, start_step, f"{cfg.model} x{cfg.scale}", _bicubic_psnr(val, cfg.scale))
    progress = Progress(run, start_step, cfg.steps)
    val_psnr = val_psnr_now()
    curve.add(start_step, val_psnr)
    bar = tqdm(total=cfg.steps, initial=start_step, desc=f"{cfg.model} x{cfg.scale}", unit="step",
               mininterval=0.5 if sys.stderr.isatty() else 60)  # a background log gets a line a minute
    bar.set_postfix(val_psnr_y=f"{val_psnr:.2f}")
    losses: list[float] = []

    def save(n: int) -> None:
        seconds = prev_seconds + time.time() - t0
        checkpoints.save(ckpt, n, {"step": n, "settings": settings, "sampler": sampler.state(n),
                                   "seconds": round(seconds, 1), "config": resolved})
        save_seconds(run, seconds)
        progress.write(n, val_psnr_y=round(val_psnr, 3), loss=float(np.mean(losses[-50:])) if losses else None)

    stopped_by = None
    with StopRequest() as stop:
        for step in range(start_step, end):
            losses.append(float(train_step(*sampler.batch_at(step))))
            step_var.assign(step + 1)
            n = step + 1
            bar.update(1)
            if n % cfg.val_every == 0 or n == cfg.steps:
                val_psnr = val_psnr_now()
                curve.add(n, val_psnr)
                progress.write(n, val_psnr_y=round(val_psnr, 3), loss=float(np.mean(losses[-50:])))
            stopped_by = stop.signal
            if (n % cfg.ckpt_every == 0 or n == end or stopped_by
                    or time.time() - last_save >= cfg.ckpt_minutes * 60):
                save(n)
                last_save = time.time()
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", val_psnr_y=f"{val_psnr:.2f}", refresh=False)
            if stopped_by:
                break
    bar.close()
    n = int(step_var.numpy())
    seconds = prev_seconds + time.time() - t0
    if stopped_by:
        raise TrainingStopped(f"{stopped_by}: stopped at step {n} of {cfg.steps}, checkpoint saved in {run}; "
                              "rerun the same command to resume")
    if n < cfg.steps:
        tqdm.write(f"stopped at step {n} of {cfg.steps} (--stop_at); rerun without it to resume")
        return TrainResult(n, seconds, val_psnr, None, finished=False)
    weights = None
    if cfg.export:
        with _averaged(ema):  # the weights validation scored
            weights = export_weights(model, cfg, seconds, val_psnr, len(train_files), _weights_dir(cfg), stages,
                                     data_source=_data_source(source, train_files, val_files), settings=settings)
    return TrainResult(cfg.steps, seconds, val_psnr, weights)


def _averaged(ema: Optional[Ema]):
    """The EMA weights swapped in while inside (no EMA: the weights as they are)."""
    return ema.swapped_in() if ema else contextlib.nullcontext()


def _weights_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.weights_dir) if cfg.weights_dir else models.registry.WEIGHTS_DIR


def _data_source(source: str, train_files: Sequence[Path], val_files: Sequence[Path]) -> dict:
    """The recipe's record of which photos trained and validated the weights."""
    return {"source": source, "train": [p.stem for p in train_files], "validation": [p.stem for p in val_files]}


def _restore_latest(cfg: TrainConfig) -> tuple[keras.Model, Optional[Ema], int, dict, dict]:
    """A run's latest checkpoint without training: (model, its EMA or None, step, settings, state)."""
    checkpoints = RunCheckpoints(cfg.run_path)
    found = checkpoints.latest()
    if found is None:
        raise UserInputError(f"{cfg.run_path} has no checkpoint yet; nothing to snapshot")
    settings = resolve_settings(cfg, found[1])
    model = models.build(cfg.model, cfg.scale)
    opt = keras.optimizers.Adam(make_schedule(settings["lr_schedule"], cfg.learning_rate, cfg.steps,
                                              settings["warmup"]))
    opt.build(model.trainable_variables)
    ema = Ema(model, settings["ema"]) if settings["ema"] else None
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    state = checkpoints.restore(tf.train.Checkpoint(model=model, optimizer=opt, step=step_var,
                                                    **({"ema": ema.module} if ema else {})))
    return model, ema, int(step_var.numpy()), settings, state or {}


def snapshot(cfg: TrainConfig, out: str | Path) -> int:
    """Write a run's latest checkpoint (its EMA average, if the run keeps one: what export would
    write) to `out` (.h5) without training, so a long run can be judged mid-way; returns its step."""
    model, ema, step, _, _ = _restore_latest(cfg)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with _averaged(ema):
        model.save_weights(str(out))
    return step


def export_checkpoint(cfg: TrainConfig) -> tuple[int, str]:
    """Ship a run's latest checkpoint as the zoo's weight + recipe, without training: a long run
    that already beats the shipped weight need not finish first. The recipe says at which step of
    which schedule it stopped, and how to remake it (`--stop_at` that step, then this). Returns
    (step, weights path)."""
    model, ema, step, settings, state = _restore_latest(cfg)
    run = cfg.run_path
    train_files, val_files, source = training_photos(cfg)
    stages = [{**s, "to_step": min(s["to_step"], step)} for s in read_stages(run) or []
              if s["from_step"] < step or not s["from_step"]]
    with _averaged(ema):
        val_psnr = validate(model, _validation_samples(val_files, cfg.scale), cfg.scale)
        weights = export_weights(model, cfg, float(state.get("seconds", previous_seconds(run))), val_psnr,
                                 len(train_files), _weights_dir(cfg), stages, settings=settings, stopped_at=step,
                                 data_source=_data_source(source, train_files, val_files))
    return step, weights


def _bicubic_psnr(samples: Sequence[images.Sample], scale: int) -> Optional[float]:
    """The validation photos' bicubic PSNR_Y: the line a model must clear (None if unavailable)."""
    try:
        return float(np.mean([metrics.psnr(bicubic_upscale(s.lr, scale), s.hr, crop_border=scale) for s in samples]))
    except (ValueError, TypeError):
        return None


def init_body_from(model: keras.Model, path: str) -> list[str]:
    """Start from another scale's weights: every layer whose name and shapes match (the body);
    the scale-specific tail keeps its fresh init. Returns the layers that were loaded."""
    src = Path(path)
    if not src.is_file():
        raise models.ModelError(f"--init_from {src} does not exist")
    if models.registry._WEIGHT_RE.match(src.name):  # noqa: SLF001 - same naming rule
        models.verify_weights(src)
    before = [w.numpy().copy() for w in model.weights]
    try:
        model.load_weights(str(src), by_name=True, skip_mismatch=True)
    except (OSError, ValueError, KeyError, TypeError) as e:  # not an HDF5 weight file, or truncated
        raise models.ModelError(f"--init_from {src} is not a readable Keras weight file (.h5): "
                                f"{' '.join(str(e).split())[:120]}") from None
    loaded = sorted({w.name.split("/")[0] for w, b in zip(model.weights, before)
                     if not np.array_equal(w.numpy(), b)})
    if not loaded:
        raise models.ModelError(f"--init_from {src}: no layer of {model.name} matches its weights")
    tqdm.write(f"initialised {len(loaded)} layers from {src.name}")
    return loaded
