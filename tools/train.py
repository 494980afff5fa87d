"""Train a zoo model: `python tools/train.py --model xlsr --scale 3 --steps 3000`.

Rerun the same command to resume from the last checkpoint in --run_dir.
"""
from absl import flags

from deploy.commands import flag_checks
from deploy.commands.cli import run_cli
from deploy.training.trainer import TrainConfig, train

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "xlsr", "zoo model name (see tools/convert.py --list_models)")
flags.DEFINE_integer("scale", 3, "upscaling factor")
flags.DEFINE_integer("steps", 3000, "optimizer steps")
flags.DEFINE_integer("batch", 16, "patches per step")
flags.DEFINE_integer("patch", 48, "LR patch side in pixels")
flags.DEFINE_float("lr", None, "Adam learning rate (default: 1e-3, EDSR 2e-4), cosine-decayed")
flags.DEFINE_integer("seed", 0, "seed of the batch sampler")
flags.DEFINE_integer("val_every", 250, "validate every N steps")
flags.DEFINE_string("run_dir", None, "checkpoints/logs (default runs/<model>_x<scale>)")
flags.DEFINE_string("train_dir", None, "folder of HR images (default: the shipped photos)")
flags.DEFINE_enum("train_set", "shipped", ["shipped", "full"], "without --train_dir: the shipped "
                  "photos, or their full-size originals (`python tools/prepare_data.py` installs them)")
flags.DEFINE_string("init_from", None, "start from these weights (.h5), e.g. to fine-tune x4 from x3")
flags.DEFINE_bool("export", True, "write hash-named weights + recipe to models/weights when done")
flag_checks.positive("scale", "steps", "batch", "val_every")
flag_checks.at_least("patch", 8, " LR pixels")
flags.register_validator("lr", lambda v: v is None or v > 0, message="--lr must be > 0")


def main(argv):
    del argv
    cfg = TrainConfig(model=FLAGS.model, scale=FLAGS.scale, steps=FLAGS.steps, batch=FLAGS.batch,
                      patch=FLAGS.patch, lr=FLAGS.lr, seed=FLAGS.seed, val_every=FLAGS.val_every,
                      ckpt_every=FLAGS.val_every, run_dir=FLAGS.run_dir, train_dir=FLAGS.train_dir,
                      full_size=FLAGS.train_set == "full",
                      init_from=FLAGS.init_from, export=FLAGS.export)
    result = run_cli(lambda: train(cfg))
    print(f"trained {cfg.model} x{cfg.scale}: {result.steps} steps in {result.seconds / 60:.1f} min, "
          f"validation PSNR_Y {result.val_psnr_y:.2f} dB; weights: {result.weights}")


if __name__ == "__main__":
    flag_checks.main(main)
