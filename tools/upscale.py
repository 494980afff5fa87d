"""Upscale an image of any size in tiles, optionally routing each tile to a wider model.

  python tools/upscale.py --model xlsr --scale 3 --policy hybrid.json --input photo.png --out big.png
  python tools/upscale.py --model xlsr --scale 3 --policy hybrid.json --adaptive --wide_fraction 0.25 \
      --input photo.png --out big.png
Without --adaptive every tile runs the policy's (hybrid) model; with it a cheap per-tile
criterion sends the tiles that need precision to the all-a16w8 model and the seams are blended.
Writes big.png and big.json (tiles, route map, wide fraction, times). Both models are built once
and cached in --cache_dir.
"""
from absl import flags

from deploy.runtime import adaptive

from deploy.commands import upscale_jobs as adaptive_jobs

from deploy.commands import flag_checks, jobs
from deploy.commands.cli import define_source_flags, fail, run_cli, source_from_flags

FLAGS = flags.FLAGS
define_source_flags()
flags.DEFINE_string("policy", None, "per-layer precision policy (JSON) of the fast model")
flags.DEFINE_string("input", None, "LR image to upscale (PNG/JPEG/...)")
flags.DEFINE_string("out", None, "SR image to write (a .json report is written beside it)")
flags.DEFINE_bool("adaptive", False, "route tiles to the hybrid or the all-a16w8 model per tile")
flags.DEFINE_float("wide_fraction", None, "with --adaptive: route this fraction of tiles wide (default 0.25)")
flags.DEFINE_float("threshold", None, "with --adaptive: or route every tile whose criterion >= this")
flags.DEFINE_enum("criterion", adaptive.DEFAULT_CRITERION, list(adaptive.CRITERIA), "per-tile criterion")
flags.DEFINE_string("tile", "64x64", "fixed LR tile (model input) size HxW")
flags.DEFINE_integer("blend", 4, "width of the seam cross-fade, LR pixels")
flags.DEFINE_string("cache_dir", str(adaptive_jobs.DEFAULT_CACHE), "where built models are kept ('' = none)")
flags.DEFINE_string("calib_dir", None, "folder of HR photos for calibration (default: training photos)")
flags.DEFINE_integer("calib_images", 8, "number of calibration images (4 patches each)")
flags.DEFINE_integer("num_threads", 2, "interpreter threads")
flags.DEFINE_bool("overwrite", False, "replace --out if it exists")
flag_checks.positive("calib_images", "num_threads")
flag_checks.at_least("blend", 0, " LR pixels")
flag_checks.hw_text("tile", maximum=jobs.MAX_INPUT_SIDE)
flag_checks.finite("threshold", "wide_fraction")
flags.register_validator("wide_fraction", lambda v: v is None or 0 <= v <= 1,
                         message="--wide_fraction must be between 0 and 1")

flag_checks.conflicts(["adaptive", "wide_fraction", "threshold"],
                      lambda: None if FLAGS.adaptive or (FLAGS.wide_fraction is None and FLAGS.threshold is None)
                      else "--wide_fraction/--threshold need --adaptive")


def main(argv):
    del argv
    for name in ("policy", "input", "out"):
        if not getattr(FLAGS, name):
            fail(f"--{name} is required (see --helpfull); write a policy with tools/convert.py --write_policy a8w8")
    tile = run_cli(lambda: jobs.parse_hw(FLAGS.tile))
    if tile is None:
        fail("--tile must be a fixed size such as 64x64")
    run_cli(lambda: jobs.check_image_count("calib_images", FLAGS.calib_dir, FLAGS.calib_images,
                                           FLAGS["calib_images"].present))
    src = source_from_flags()
    r = run_cli(lambda: adaptive_jobs.upscale_file(
        src, FLAGS.policy, FLAGS.input, FLAGS.out, adaptive_on=FLAGS.adaptive, tile=tile, blend=FLAGS.blend,
        criterion_name=FLAGS.criterion, wide_fraction=FLAGS.wide_fraction, threshold=FLAGS.threshold,
        cache_dir=FLAGS.cache_dir or None, calib_dir=FLAGS.calib_dir, calib_images=FLAGS.calib_images,
        num_threads=FLAGS.num_threads, overwrite=FLAGS.overwrite))
    h, w = r["output_hw"]
    print(f"wrote {FLAGS.out} ({w}x{h}): {r['tiles']} tiles, {r['wide_tiles']} wide "
          f"({r['wide_fraction']:.0%}), {r['total_seconds']:.1f} s "
          f"(models {'cached' if r['models']['cached'] else 'built'} in {r['models']['build_seconds']:.1f} s); "
          f"report: {jobs.report_path(FLAGS.out)}")


if __name__ == "__main__":
    flag_checks.main(main)
