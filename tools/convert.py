"""Convert a zoo model to TFLite: `python tools/convert.py --model xlsr --scale 3 --precision int8 --out m.tflite`.

Writes m.tflite and m.json (precision, size, ops, float ops left and why, calibration images).
"""
from absl import app, flags

from deploy.cli import fail, run_cli
from deploy import jobs
from deploy.convert import DEFAULT_INPUT_HW, IO_TYPES, PRECISIONS

FLAGS = flags.FLAGS
flags.DEFINE_bool("list_models", False, "list the zoo and exit")
flags.DEFINE_string("model", "xlsr", "zoo model name")
flags.DEFINE_integer("scale", 3, "upscaling factor")
flags.DEFINE_enum("precision", "int8", PRECISIONS, "uniform precision of the whole model")
flags.DEFINE_string("out", None, "output .tflite path (a .json report is written beside it)")
flags.DEFINE_string("input_size", "x".join(map(str, DEFAULT_INPUT_HW)),
                    "fixed LR input HxW (NPUs need fixed shapes), or 'dynamic' (float/fp16)")
flags.DEFINE_string("weights", None, "a .h5 weight file (default: the shipped, hash-checked weights)")
flags.DEFINE_string("calib_dir", None, "folder of HR photos for calibration (default: training photos)")
flags.DEFINE_integer("calib_images", 8, "number of calibration images (4 patches each)")
flags.DEFINE_enum("io_type", "float32", IO_TYPES, "model input/output dtype")
flags.DEFINE_bool("overwrite", False, "replace --out if it exists")


def main(argv):
    del argv
    if FLAGS.list_models:
        print(run_cli(jobs.list_models_table))
        return
    if not FLAGS.out:
        fail("--out is required (e.g. --out m.tflite)")
    report = run_cli(lambda: jobs.convert_zoo_model(
        FLAGS.model, FLAGS.scale, FLAGS.precision, FLAGS.out, input_hw=jobs.parse_hw(FLAGS.input_size),
        weights=FLAGS.weights or True, calib_dir=FLAGS.calib_dir, calib_images=FLAGS.calib_images,
        io_type=FLAGS.io_type, overwrite=FLAGS.overwrite))
    floats = ", ".join(sorted({f["op"] for f in report["float_ops"]})) or "none"
    print(f"wrote {FLAGS.out} ({report['size_bytes'] / 1024:.1f} KiB, {report['precision']}, "
          f"input {report['input_shape']}); float ops left: {floats}; report: "
          f"{jobs.report_path(FLAGS.out)}")


if __name__ == "__main__":
    app.run(main)
