"""Deployment report of one model: quality, policy, search, latency, visual crops; model metadata.

  python tools/report.py --model xlsr --scale 3 [--policy hybrid.json] [--sensitivity sens.json]
      [--pareto front.json] [--results adb_bench/results.jsonl] --out report/
  python tools/report.py --render_only --out report/      (redraw from report/inputs, no recompute)
  python tools/report.py --inspect m.tflite               (the metadata embedded by convert.py)
Writes report/index.md, PNGs beside it, and report/inputs/ (every number's source + manifest).
"""
from absl import flags

from deploy.commands import flag_checks
from deploy.commands.cli import define_source_flags, fail, run_cli, source_from_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("inspect", None, "print the srdeploy metadata embedded in this .tflite and exit")
define_source_flags()
flags.DEFINE_string("policy", None, "per-layer policy JSON (default: input layers and tail a16w8, rest a8w8)")
flags.DEFINE_string("sensitivity", None, "sensitivity JSON from tools/search_policy.py --sensitivity")
flags.DEFINE_string("pareto", None, "Pareto front JSON from tools/search_policy.py --pareto")
flags.DEFINE_string("results", None, "harness results (JSON lines) from tools/adb_bench.py")
flags.DEFINE_multi_string("device_profile", [], "cost-model device profile(s) for predicted latency")
flags.DEFINE_string("data", None, "folder of HR images (default: the bundled evaluation set)")
flags.DEFINE_string("input_size", "64x64", "fixed LR input HxW of the converted models")
flags.DEFINE_string("calib_dir", None, "folder of HR photos for calibration (default: training photos)")
flags.DEFINE_integer("calib_images", 8, "calibration images (4 patches each)")
flags.DEFINE_integer("crops", 3, "images shown as visual crops (0: none)")
flags.DEFINE_string("out", None, "report folder (index.md + PNGs + inputs/)")
flags.DEFINE_bool("render_only", False, "redraw --out from its inputs/ without recomputing anything")
flags.DEFINE_bool("overwrite", False, "replace --out if it exists")
flag_checks.positive("calib_images")
flag_checks.at_least("crops", 0)


def main(argv):
    del argv
    from deploy.report import build
    if FLAGS.inspect:  # no TensorFlow import: answers in a second
        return print(run_cli(lambda: build.inspect(FLAGS.inspect)))
    from deploy.commands import jobs
    from deploy.report.gather import GatherOptions
    if not FLAGS.out:
        fail("--out is required (a folder, e.g. --out report/)")
    if FLAGS.render_only:
        result = run_cli(lambda: build.render_only(FLAGS.out))
    else:
        hw = run_cli(lambda: jobs.parse_hw(FLAGS.input_size))
        if hw is None:
            fail("the report needs a fixed --input_size (e.g. 64x64)")
        src = source_from_flags()
        opts = GatherOptions(FLAGS.policy, FLAGS.sensitivity, FLAGS.pareto, FLAGS.results, FLAGS.data,
                             FLAGS.calib_dir, hw, FLAGS.calib_images, FLAGS.crops, tuple(FLAGS.device_profile))
        result = run_cli(lambda: build.build(src, FLAGS.out, opts, overwrite=FLAGS.overwrite))
    print(result.summary)
    for line in result.skipped:
        print(f"skipped: {line}")
    print(f"wrote {result.index} ({len(result.figures)} figures; sections: "
          + ", ".join(k for k, v in result.sections.items() if v) + ")")


if __name__ == "__main__":
    flag_checks.main(main)
