"""Training of zoo models: L1 loss, Adam with cosine decay, random HR crops + flips/rotations,
MATLAB-bicubic LR; resumable from checkpoints, validation PSNR_Y in the progress bar.

A session's background jobs end with the session, so everything needed to continue (weights,
optimizer state, step) is checkpointed every `ckpt_every` steps; rerunning the same command
resumes. Batches are drawn from an RNG seeded by (seed, step), so a resumed run sees the same
batches it would have seen uninterrupted.
"""
from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

import models
from deploy.data import images as data
from deploy.data import metrics
from deploy.data.imresize import imresize
from models._keras import keras, tf

#: Longer side of training photos is brought down to this (DIV2K's 2K); 5K wallpapers are soft
#: at the pixel level and would teach the nets to blur.
MAX_TRAIN_SIDE = 2040
DEFAULT_LR = {"edsr_baseline": 2e-4}


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
    train_dir: Optional[str] = None  # default: the shipped photos (deploy/data/shipped.py)
    full_size: bool = False  # the full-size Debian originals of the shipped photos (prepare_data.py)
    init_from: Optional[str] = None  # weights to start from (e.g. the x3 model for x4)
    export: bool = True
    weights_dir: Optional[str] = None  # default models/weights

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


def _shrink(hr: np.ndarray) -> np.ndarray:
    side = max(hr.shape[:2])
    return imresize(hr, MAX_TRAIN_SIDE / side) if side > MAX_TRAIN_SIDE else hr


def _load_photos(files: Sequence[Path], scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for p in tqdm(files, desc="loading photos", leave=False):
        s = data.make_samples([(p.stem, _shrink(data.load_image(p)))], scale)[0]
        pairs.append((s.hr, s.lr))
    return pairs


def _detail(patch: np.ndarray) -> float:
    g = patch.astype(np.float32).mean(axis=-1)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def sample_batch(pairs, batch: int, patch: int, scale: int, rng: np.random.Generator,
                 oversample: int = 3):
    """Aligned random LR/HR crops with a random dihedral transform, float32 in [0, 1].

    Wallpaper photos are mostly smooth (sky, bokeh); of `oversample * batch` random crops the
    `batch` with the most detail are kept, so steps are not wasted on flat patches.
    """
    areas = np.array([lr.shape[0] * lr.shape[1] for _, lr in pairs], dtype=np.float64)
    idx = rng.choice(len(pairs), size=batch * oversample, p=areas / areas.sum())
    cands = []
    for i in idx:
        lr = pairs[i][1]
        y = rng.integers(0, lr.shape[0] - patch + 1)
        x = rng.integers(0, lr.shape[1] - patch + 1)
        cands.append((_detail(lr[y:y + patch, x:x + patch]), i, y, x))
    cands.sort(key=lambda c: -c[0])
    lrs, hrs = [], []
    for _, i, y, x in cands[:batch]:
        hr, lr = pairs[i]
        lp = lr[y:y + patch, x:x + patch]
        hp = hr[y * scale:(y + patch) * scale, x * scale:(x + patch) * scale]
        k, flip = rng.integers(0, 4), rng.integers(0, 2)
        lp, hp = np.rot90(lp, k), np.rot90(hp, k)
        if flip:
            lp, hp = lp[:, ::-1], hp[:, ::-1]
        lrs.append(lp)
        hrs.append(hp)
    return (np.stack(lrs).astype(np.float32) / 255.0, np.stack(hrs).astype(np.float32) / 255.0)


def predict_uint8(model: keras.Model, lr: np.ndarray) -> np.ndarray:
    y = model(lr[None].astype(np.float32) / 255.0, training=False)[0].numpy()
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


def validate(model: keras.Model, samples: Sequence[data.Sample], scale: int) -> float:
    return float(np.mean([metrics.psnr(predict_uint8(model, s.lr), s.hr, crop_border=scale)
                          for s in samples]))


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) one model; export hash-named weights and their recipe when done."""
    for name, low in (("steps", 1), ("batch", 1), ("patch", 8), ("val_every", 1), ("ckpt_every", 1)):
        if getattr(cfg, name) < low:
            raise data.DataError(f"{name} must be >= {low}, not {getattr(cfg, name)}")
    if cfg.run_path.exists() and not cfg.run_path.is_dir():
        raise data.DataError(f"run dir {cfg.run_path} is a file; pass a folder (--run_dir) for checkpoints")
    train_files, val_files, source = data.training_photos(cfg.train_dir, full_size=cfg.full_size)
    pairs = _load_photos(train_files, cfg.scale)
    small = [p for p, (_, lr) in zip(train_files, pairs) if min(lr.shape[:2]) < cfg.patch]
    if small:
        raise data.DataError(f"{small[0]} is smaller than one LR patch ({cfg.patch}px at x{cfg.scale})")
    val = data.make_samples([(p.stem, data.textured_crop(_shrink(data.load_image(p)), 240))
                             for p in val_files], cfg.scale)

    model = models.build(cfg.model, cfg.scale)
    if cfg.init_from:
        init_body_from(model, cfg.init_from)
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, cfg.steps, alpha=0.01)
    opt = keras.optimizers.Adam(schedule)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step_var)
    run = cfg.run_path
    manager = tf.train.CheckpointManager(ckpt, str(run / "ckpt"), max_to_keep=2)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        tqdm.write(f"resuming {cfg.model} x{cfg.scale} from step {int(step_var.numpy())}")
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    stages = record_stage(run, _command(), int(step_var.numpy()), cfg.steps)

    @tf.function(reduce_retracing=True)
    def train_step(lr_b, hr_b):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(lr_b, training=True) - hr_b))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    start_step, t0 = int(step_var.numpy()), time.time()
    prev_seconds = _previous_seconds(run)
    val_psnr = validate(model, val, cfg.scale)
    bar = tqdm(total=cfg.steps, initial=start_step, desc=f"{cfg.model} x{cfg.scale}", unit="step")
    bar.set_postfix(val_psnr_y=f"{val_psnr:.2f}")
    losses = []
    for step in range(start_step, cfg.steps):
        rng = np.random.default_rng([cfg.seed, step])
        losses.append(float(train_step(*sample_batch(pairs, cfg.batch, cfg.patch, cfg.scale, rng))))
        step_var.assign(step + 1)
        bar.update(1)
        done = step + 1 == cfg.steps
        if (step + 1) % cfg.val_every == 0 or done:
            val_psnr = validate(model, val, cfg.scale)
        if (step + 1) % cfg.ckpt_every == 0 or done:
            manager.save(checkpoint_number=step + 1)
            _save_seconds(run, prev_seconds + time.time() - t0)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", val_psnr_y=f"{val_psnr:.2f}")
    bar.close()
    seconds = prev_seconds + time.time() - t0
    _save_seconds(run, seconds)
    weights = None
    if cfg.export:
        directory = Path(cfg.weights_dir) if cfg.weights_dir else models.registry.WEIGHTS_DIR
        weights = export_weights(model, cfg, seconds, val_psnr, len(train_files), directory, stages,
                                 data_source={"source": source, "train": [p.stem for p in train_files],
                                              "validation": [p.stem for p in val_files]})
    return TrainResult(cfg.steps, seconds, val_psnr, weights)


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


def _command() -> str:
    return "python tools/train.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def record_stage(run: Path, command: str, from_step: int, to_step: int) -> list[dict]:
    """Append this invocation to `run/stages.json` and return the history.

    A run extended with a larger --steps (a warm restart of the cosine schedule) is not what a
    single command from scratch would give, so the recipe lists every stage. A plain resume
    with the same command merges into the stage it continues. A run dir from before stages
    were recorded is assumed to have started with the current command."""
    f = run / "stages.json"
    stages = json.loads(f.read_text()) if f.is_file() else (
        [{"command": command, "from_step": 0, "to_step": from_step}] if from_step else [])
    if stages and stages[-1]["command"] == command:
        stages[-1]["to_step"] = to_step
    elif from_step < to_step or not stages:
        stages.append({"command": command, "from_step": from_step, "to_step": to_step})
    f.write_text(json.dumps(stages, indent=2) + "\n")
    return stages


def _previous_seconds(run: Path) -> float:
    f = run / "seconds.txt"
    return float(f.read_text()) if f.is_file() else 0.0


def _save_seconds(run: Path, seconds: float) -> None:
    (run / "seconds.txt").write_text(f"{seconds:.1f}")


def export_weights(model: keras.Model, cfg: TrainConfig, seconds: float, val_psnr: float,
                   n_images: int, directory: Path = models.registry.WEIGHTS_DIR,
                   stages: Sequence[dict] = (), data_source: Optional[dict] = None) -> str:
    """Write `<name>_x<scale>-<sha8>.h5` (replacing older ones) plus its training recipe."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{cfg.model}_x{cfg.scale}.tmp.h5"
    model.save_weights(str(tmp))
    sha8 = models.registry.file_sha256(tmp)[:8]
    for old in directory.glob(f"{cfg.model}_x{cfg.scale}-*.h5"):
        old.unlink()
    final = directory / f"{cfg.model}_x{cfg.scale}-{sha8}.h5"
    tmp.rename(final)
    recipe = {
        "weights": final.name, "model": cfg.model, "scale": cfg.scale,
        "command": " && ".join(s["command"] for s in stages) if stages else _command(),
        "stages": list(stages),
        "config": dataclasses.asdict(cfg), "train_images": n_images, "steps": cfg.steps,
        "train_seconds": round(seconds, 1), "val_psnr_y": round(val_psnr, 3),
        "val_images": list(data_source["validation"]) if data_source else [],
        "data": data_source, "hardware": "2-core CPU" if not tf.config.list_physical_devices("GPU") else "GPU",
    }
    models.recipe_path(cfg.model, cfg.scale, directory).write_text(json.dumps(recipe, indent=2) + "\n")
    return str(final)
