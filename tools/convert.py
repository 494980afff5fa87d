"""Convert a zoo model to TFLite: `python tools/convert.py --model xlsr --scale 3 --precision int8 --out m.tflite`.

Writes m.tflite and m.json (precision, size, ops, float ops left and why, calibration images).
"""
from absl import app, flags

from deploy.cli import fail, run_cli
from deploy import hybrid_jobs, jobs
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
flags.DEFINE_string("policy", None, "per-layer precision policy (JSON); overrides --precision")
flags.DEFINE_bool("list_layers", False, "print every layer a policy can address, with MACs, and exit")
flags.DEFINE_enum("write_policy", None, ["a8w8", "a16w8", "float"],
                  "print a complete uniform policy at this precision and exit")
flags.DEFINE_integer("qat_steps", 0, "policy-aware quantization-aware fine-tuning steps before export")
flags.DEFINE_string("train_dir", None, "photos for --qat_steps (default: the training photos)")


def main(argv):
    del argv
    if FLAGS.list_models:
        print(run_cli(jobs.list_models_table))
        return
    hw = run_cli(lambda: jobs.parse_hw(FLAGS.input_size))
    if FLAGS.list_layers or FLAGS.write_policy:
        if hw is None:
            fail("--list_layers/--write_policy need a fixed --input_size")
        if FLAGS.list_layers:
            print(run_cli(lambda: hybrid_jobs.list_layers(FLAGS.model, FLAGS.scale, hw)))
        else:
            print(run_cli(lambda: hybrid_jobs.write_policy(FLAGS.model, FLAGS.scale, FLAGS.write_policy, hw)), end="")
        return
    if not FLAGS.out:
        fail("--out is required (e.g. --out m.tflite)")
    if FLAGS.policy:
        report = run_cli(lambda: hybrid_jobs.convert_with_policy(
            FLAGS.model, FLAGS.scale, FLAGS.policy, FLAGS.out, input_hw=hw, weights=FLAGS.weights or True,
            calib_dir=FLAGS.calib_dir, calib_images=FLAGS.calib_images, overwrite=FLAGS.overwrite,
            qat_steps=FLAGS.qat_steps, train_dir=FLAGS.train_dir))
        print(f"wrote {FLAGS.out} ({report['size_bytes'] / 1024:.1f} KiB, per-layer {report['ops_by_precision']}, "
              f"{report['requantize_ops']} requantize ops, {len(report['float_ops'])} float ops, verified); "
              f"report: {jobs.report_path(FLAGS.out)}")
        return
    report = run_cli(lambda: jobs.convert_zoo_model(
        FLAGS.model, FLAGS.scale, FLAGS.precision, FLAGS.out, input_hw=hw,
        weights=FLAGS.weights or True, calib_dir=FLAGS.calib_dir, calib_images=FLAGS.calib_images,
        io_type=FLAGS.io_type, overwrite=FLAGS.overwrite))
    floats = ", ".join(sorted({f["op"] for f in report["float_ops"]})) or "none"
    print(f"wrote {FLAGS.out} ({report['size_bytes'] / 1024:.1f} KiB, {report['precision']}, "
          f"input {report['input_shape']}); float ops left: {floats}; report: "
          f"{jobs.report_path(FLAGS.out)}")


if __name__ == "__main__":
    app.run(main)
