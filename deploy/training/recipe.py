"""A run's record: the commands that made it (stages.json), its seconds, and the recipe JSON
written beside each exported weight file, so every shipped weight says how to remake it."""
from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import models
from deploy._files import atomic_write
from models._keras import keras, tf

if TYPE_CHECKING:
    from deploy.training.trainer import TrainConfig

#: Flags that change when and whether checkpoints are written, never the weights: left out of
#: the recorded command, so stopping and resuming a run does not look like a new stage.
NEUTRAL_FLAGS = ("stop_at", "ckpt_every", "ckpt_minutes")


def command_line(argv: Optional[Sequence[str]] = None) -> str:
    """This invocation as a command line, without the flags that only say when to checkpoint/stop."""
    args, out, skip = list(sys.argv[1:] if argv is None else argv), [], False
    for a in args:
        if skip:
            skip = False
            continue
        name = a.lstrip("-").split("=", 1)[0]
        if a.startswith("-") and name in NEUTRAL_FLAGS:
            skip = "=" not in a
            continue
        out.append(a)
    return "python tools/train.py " + " ".join(shlex.quote(a) for a in out)


def read_stages(run: Path) -> Optional[list[dict]]:
    """The run's recorded stages (`run/stages.json`), None if it has none."""
    f = run / "stages.json"
    return json.loads(f.read_text()) if f.is_file() else None


def record_stage(run: Path, command: str, from_step: int, to_step: int) -> list[dict]:
    """Append this invocation to `run/stages.json` and return the history.

    A run extended with a larger --steps (a warm restart of the cosine schedule) is not what a
    single command from scratch would give, so the recipe lists every stage. A plain resume
    with the same command merges into the stage it continues. A run dir from before stages
    were recorded is assumed to have started with the current command."""
    stages = read_stages(run)
    if stages is None:
        stages = [{"command": command, "from_step": 0, "to_step": from_step}] if from_step else []
    if stages and stages[-1]["command"] == command:
        stages[-1]["to_step"] = to_step
    elif from_step < to_step or not stages:
        stages.append({"command": command, "from_step": from_step, "to_step": to_step})
    atomic_write(run / "stages.json", json.dumps(stages, indent=2) + "\n")
    return stages


def previous_seconds(run: Path) -> float:
    f = run / "seconds.txt"
    return float(f.read_text()) if f.is_file() else 0.0


def save_seconds(run: Path, seconds: float) -> None:
    atomic_write(run / "seconds.txt", f"{seconds:.1f}")


def export_weights(model: keras.Model, cfg: TrainConfig, seconds: float, val_psnr: float,
                   n_images: int, directory: Path = models.registry.WEIGHTS_DIR,
                   stages: Sequence[dict] = (), data_source: Optional[dict] = None,
                   settings: Optional[dict] = None, stopped_at: Optional[int] = None) -> str:
    """Write `<name>_x<scale>-<sha8>.h5` (replacing older ones) plus its training recipe
    (`stopped_at`: the run's checkpoint at that step, before the end of its --steps schedule)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{cfg.model}_x{cfg.scale}.tmp.h5"
    model.save_weights(str(tmp))
    sha8 = models.registry.file_sha256(tmp)[:8]
    final = directory / f"{cfg.model}_x{cfg.scale}-{sha8}.h5"
    tmp.replace(final)  # in place before the old ones go: a kill here never leaves no weights
    for old in directory.glob(f"{cfg.model}_x{cfg.scale}-*.h5"):
        if old != final:
            old.unlink()
    config = {**dataclasses.asdict(cfg), **(settings or {})}
    for k in NEUTRAL_FLAGS:
        config.pop(k, None)
    recipe = {
        "weights": final.name, "model": cfg.model, "scale": cfg.scale,
        "command": " && ".join(s["command"] for s in stages) if stages else command_line(),
        "stages": list(stages),
        "config": config, "train_images": n_images, "steps": cfg.steps if stopped_at is None else stopped_at,
        "train_seconds": round(seconds, 1), "val_psnr_y": round(val_psnr, 3),
        "val_images": list(data_source["validation"]) if data_source else [],
        "data": data_source, "hardware": "2-core CPU" if not tf.config.list_physical_devices("GPU") else "GPU",
    }
    if stopped_at is not None and stopped_at < cfg.steps:
        recipe["stopped_early"] = {
            "at_step": stopped_at, "schedule_steps": cfg.steps,
            "note": f"exported from the run's checkpoint at step {stopped_at} of its {cfg.steps}-step schedule "
                    f"(tools/train.py --export_checkpoint); to remake: the command with --stop_at {stopped_at}, "
                    "then the same command with --export_checkpoint"}
    atomic_write(models.recipe_path(cfg.model, cfg.scale, directory), json.dumps(recipe, indent=2) + "\n")
    return str(final)
