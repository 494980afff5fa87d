"""Convert an SR model to TFLite, uniformly or per layer.

  python tools/convert.py --model xlsr --scale 3 --precision int8 --out m.tflite
  python tools/convert.py --model xlsr --scale 3 --policy hybrid.json --out m.tflite
  python tools/convert.py --model xlsr --scale 3 --list_layers | --write_policy a8w8 > p.json
  python tools/convert.py --keras_model espcn.keras --scale 3 --channels y ...   (your own model)
Writes m.tflite and m.json (precision per layer, size, ops, float ops left and why, calibration).
"""
from absl import flags

from deploy.commands import policy_jobs

from deploy.commands import flag_checks, jobs, ptq_flags
from deploy.commands.cli import define_source_flags, fail, run_cli, source_from_flags
from deploy.convert.precisions import LAYER_NAMES, UNIFORM_NAMES
from deploy.convert.uniform import DEFAULT_INPUT_HW, IO_TYPES

FLAGS = flags.FLAGS
flags.DEFINE_bool("list_models", False, "list the zoo and exit")
define_source_flags()
flags.DEFINE_enum("precision", "int8", UNIFORM_NAMES, "uniform precision of the whole model (a8w8 = int8, "
                  "int16x8 = a16w8)")
flags.DEFINE_string("policy", None, "per-layer precision policy (JSON); overrides --precision")
flags.DEFINE_bool("list_layers", False, "print every layer a policy can address, with MACs, and exit")
flags.DEFINE_enum("write_policy", None, LAYER_NAMES, "print a uniform policy and exit")
flags.DEFINE_integer("qat_steps", 0, "policy-aware quantization-aware fine-tuning steps (with --policy)")
flags.DEFINE_string("qat_init", "minmax", "where --qat_steps' int8 ranges start: minmax, mse or p<percent> (the "
                    "post-training range search's best ranges: a shorter way to the optimum)")
flags.DEFINE_string("train_dir", None, "photos for --qat_steps (default: the training photos)")
flags.DEFINE_string("out", None, "output .tflite path (a .json report is written beside it)")
flags.DEFINE_string("input_size", "x".join(map(str, DEFAULT_INPUT_HW)),
                    "fixed LR input HxW (NPUs need fixed shapes), or 'dynamic' (float/fp16)")
flags.DEFINE_string("calib_dir", None, "folder of HR photos for calibration (default: training photos)")
flags.DEFINE_integer("calib_images", 8, "number of calibration images (4 patches each)")
flags.DEFINE_enum("io_type", "float32", IO_TYPES, "model input/output dtype (--precision)")
flags.DEFINE_bool("overwrite", False, "replace --out if it exists")
# post-training quantization options (deploy/convert/ptq; per-layer route, recorded in the report)
ptq_flags.define()
flag_checks.at_least("qat_steps", 0)
flag_checks.positive("calib_images")
flag_checks.hw_text("input_size", allow_dynamic=True, maximum=jobs.MAX_INPUT_SIDE)
flags.DEFINE_multi_string("npu", [], "check the written model compiles for this NPU, e.g. qualcomm:SM8650 "
                          "(repeatable): warns per op left on the CPU, records it in the report ('npu')")


def _ignored_flags():
    """Flags that would be silently ignored are an error (the policy sets precisions and io_type)."""
    if FLAGS.policy:
        ignored = flag_checks.present("precision", "io_type")
        if ignored:
            return (f"{' and '.join(ignored)} cannot be combined with --policy: the policy file sets every layer's "
                    "precision and its io_type (edit the policy instead)")
    elif FLAGS.qat_steps or FLAGS.train_dir:
        return "--qat_steps/--train_dir fine-tune for a per-layer policy: they need --policy"
    if FLAGS["qat_init"].present and not FLAGS.qat_steps:
        return "--qat_init says where --qat_steps' ranges start: it needs --qat_steps (and --policy)"
    return None


flag_checks.conflicts(["policy", "precision", "io_type", "qat_steps", "qat_init", "train_dir"], _ignored_flags)


def main(argv):
    del argv
    if FLAGS.list_models:
        return print(run_cli(jobs.list_models_table))
    hw = run_cli(lambda: jobs.parse_hw(FLAGS.input_size))
    src = source_from_flags(weights=not (FLAGS.list_layers or FLAGS.write_policy))
    if (FLAGS.list_layers or FLAGS.write_policy or FLAGS.policy) and hw is None:
        fail("per-layer work needs a fixed --input_size (e.g. 64x64)")
    if FLAGS.list_layers:
        return print(run_cli(lambda: policy_jobs.list_layers(src, hw)))
    if FLAGS.write_policy:
        return print(run_cli(lambda: policy_jobs.write_policy(src, FLAGS.write_policy, hw)), end="")
    if not FLAGS.out:
        fail("--out is required (e.g. --out m.tflite)")
    run_cli(lambda: jobs.check_image_count("calib_images", FLAGS.calib_dir, FLAGS.calib_images,
                                           FLAGS["calib_images"].present))
    run_cli(lambda: jobs.check_npu_targets(FLAGS.npu))
    ptq = ptq_flags.from_flags()  # None: the default route, as before
    common = dict(input_hw=hw, calib_dir=FLAGS.calib_dir, calib_images=FLAGS.calib_images, overwrite=FLAGS.overwrite,
                  ptq=ptq)
    if FLAGS.policy:
        r = run_cli(lambda: policy_jobs.convert_with_policy(src, FLAGS.policy, FLAGS.out, qat_steps=FLAGS.qat_steps,
                                                            qat_init=FLAGS.qat_init, train_dir=FLAGS.train_dir,
                                                            **common))
        print(f"wrote {FLAGS.out} ({r['size_bytes'] / 1024:.1f} KiB; ops per precision {r['ops_by_precision']}; "
              f"{r['requantize_ops']} requantize ops; {len(r['float_ops'])} float ops; verified)")
    else:
        r = run_cli(lambda: jobs.convert_model(src, FLAGS.precision, FLAGS.out, io_type=FLAGS.io_type, **common))
        floats = ", ".join(sorted({f["op"] for f in r["float_ops"]})) or "none"
        print(f"wrote {FLAGS.out} ({r['size_bytes'] / 1024:.1f} KiB, {r['precision']}, input {r['input_shape']}); "
              f"float ops left: {floats}")
    if FLAGS.npu:
        print("\n".join(run_cli(lambda: jobs.npu_placement(FLAGS.out, FLAGS.npu))))
    print(f"report: {r.get('report_path', jobs.report_path(FLAGS.out))}")


if __name__ == "__main__":
    flag_checks.main(main)
