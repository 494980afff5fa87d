"""Train a zoo model: `python tools/train.py --model xlsr --scale 3 --steps 3000`.

Rerun the same command to resume from the last checkpoint in --run_dir: a run stopped at any
moment (Ctrl-C, SIGTERM, kill -9, a session's end) continues to exactly the weights an
uninterrupted run gets. Watch a background run in <run_dir>/progress.json (step, ETA) and
<run_dir>/val_curve.png (validation PSNR_Y by step).
"""
from absl import flags, logging

from deploy.commands import flag_checks
from deploy.commands.cli import run_cli
from deploy.training.sampler import SAMPLERS
from deploy.training.schedule import SCHEDULES
from deploy.training.trainer import TrainConfig, export_checkpoint, set_threads, snapshot, train

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "xlsr", "zoo model name (see tools/convert.py --list_models)")
flags.DEFINE_integer("scale", 3, "upscaling factor")
flags.DEFINE_integer("steps", 3000, "optimizer steps")
flags.DEFINE_integer("batch", 16, "patches per step")
flags.DEFINE_integer("patch", 48, "LR patch side in pixels")
flags.DEFINE_float("lr", None, "peak Adam learning rate (default: 1e-3, EDSR 2e-4)")
flags.DEFINE_enum("lr_schedule", None, SCHEDULES, "learning-rate schedule over --steps (a new run's default: "
                  "cosine to 1 %; step: halved at 1/2 and 3/4; a resumed run keeps its own)")
flags.DEFINE_integer("warmup", None, "linear learning-rate warmup steps (a new run's default: 0)")
flags.DEFINE_float("ema", None, "EMA decay of the weights, e.g. 0.999; validation and export use the average "
                   "(a new run's default: 0 = off)")
flags.DEFINE_enum("sampler", None, SAMPLERS, "patch choice: top = the most textured third of random crops, "
                  "weighted = keep crops with a probability rising with texture, uniform = any crop "
                  "(a new run's default: top)")
flags.DEFINE_bool("augment", None, "random flips and 90-degree rotations (a new run's default: on)")
flags.DEFINE_integer("seed", 0, "seed of the initial weights and the batch sampler")
flags.DEFINE_integer("val_every", 250, "validate every N steps")
flags.DEFINE_integer("ckpt_every", None, "checkpoint every N steps (default: --val_every) ...")
flags.DEFINE_float("ckpt_minutes", 10.0, "... or every M minutes, whichever comes first")
flags.DEFINE_integer("stop_at", None, "checkpoint and stop at this step; rerun without it to continue")
flags.DEFINE_string("run_dir", None, "checkpoints/logs (default runs/<model>_x<scale>)")
flags.DEFINE_string("train_dir", None, "folder(s) of HR images, comma-separated; each holds one image out for "
                    "validation (default: the shipped photos). Never a benchmark test set")
flags.DEFINE_enum("train_set", "shipped", ["shipped", "full"], "without --train_dir: the shipped "
                  "photos, or their full-size originals (`python tools/prepare_data.py` installs them)")
flags.DEFINE_string("init_from", None, "start from these weights (.h5), e.g. to fine-tune x4 from x3")
flags.DEFINE_bool("export", True, "write hash-named weights + recipe to models/weights when done")
flags.DEFINE_string("snapshot", None, "write the run's latest checkpoint (EMA weights if kept) to this .h5 and "
                    "exit without training: judge a long run mid-way (tools/evaluate.py --weights)")
flags.DEFINE_bool("export_checkpoint", False, "write the run's latest checkpoint (EMA weights if kept) as the zoo's "
                  "weight + recipe in models/weights without training: ship a long run before it ends (the recipe "
                  "records the step and the schedule's length)")
flags.DEFINE_integer("threads", 0, "TensorFlow intra- and inter-op threads (0: TensorFlow's default, all cores); "
                     "1 keeps a background run on a shared machine to one core")
flag_checks.positive("scale", "steps", "batch", "val_every", "ckpt_every", "stop_at")
flag_checks.at_least("patch", 8, " LR pixels")
flag_checks.at_least("warmup", 0, " steps")
flag_checks.at_least("threads", 0, " (0 = TensorFlow's default)")
flags.register_validator("lr", lambda v: v is None or v > 0, message="--lr must be > 0")
flags.register_validator("ckpt_minutes", lambda v: v > 0, message="--ckpt_minutes must be > 0")
flags.register_validator("ema", lambda v: v is None or 0 <= v < 1, message="--ema must be in [0, 1) (0 = off)")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # TF's per-checkpoint INFO lines would flood a background log
    if FLAGS.threads:  # before TensorFlow's runtime starts (the first op), or it is too late
        set_threads(FLAGS.threads)
    cfg = TrainConfig(model=FLAGS.model, scale=FLAGS.scale, steps=FLAGS.steps, batch=FLAGS.batch,
                      patch=FLAGS.patch, lr=FLAGS.lr, seed=FLAGS.seed, val_every=FLAGS.val_every,
                      ckpt_every=FLAGS.ckpt_every or FLAGS.val_every, ckpt_minutes=FLAGS.ckpt_minutes,
                      stop_at=FLAGS.stop_at, run_dir=FLAGS.run_dir, train_dir=FLAGS.train_dir,
                      full_size=FLAGS.train_set == "full", init_from=FLAGS.init_from, export=FLAGS.export,
                      lr_schedule=FLAGS.lr_schedule, warmup=FLAGS.warmup, ema=FLAGS.ema,
                      sampler=FLAGS.sampler, augment=FLAGS.augment)
    if FLAGS.snapshot:
        step = run_cli(lambda: snapshot(cfg, FLAGS.snapshot))
        print(f"{cfg.run_path} at step {step}: weights in {FLAGS.snapshot}")
        return
    if FLAGS.export_checkpoint:
        step, weights = run_cli(lambda: export_checkpoint(cfg))
        print(f"{cfg.run_path} at step {step} of {cfg.steps}: weights {weights} (+ recipe)")
        return
    result = run_cli(lambda: train(cfg))
    if not result.finished:
        print(f"stopped {cfg.model} x{cfg.scale} at step {result.steps} of {cfg.steps}, validation PSNR_Y "
              f"{result.val_psnr_y:.2f} dB; rerun without --stop_at to continue")
        return
    print(f"trained {cfg.model} x{cfg.scale}: {result.steps} steps in {result.seconds / 60:.1f} min, "
          f"validation PSNR_Y {result.val_psnr_y:.2f} dB; weights: {result.weights}")


if __name__ == "__main__":
    flag_checks.main(main)
