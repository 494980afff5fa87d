"""PSNR_Y/SSIM_Y on the desktop with LiteRT.

  python tools/evaluate.py --tflite m.tflite [--data DIR] [--json out.json]
  python tools/evaluate.py --model xlsr --scale 3 --precision int8 [--data DIR] [--json out.json]
  python tools/evaluate.py --tflite m.tflite --npu_emulate qualcomm:SM8650 [--json out.json]
--npu_emulate: the CPU figure beside the model as that NPU computes it (compiled offline, NPU
partitions in QNN HTP emulation), per image and their difference; the JSON keeps the CPU result's
keys and adds an "npu_emulated" block. Needs: pip install -e ".[npu]".
"""
import sys

from absl import flags

from deploy.commands.cli import fail, run_cli
from deploy.commands import flag_checks, jobs
from deploy.convert.precisions import UNIFORM_NAMES
from deploy.convert.uniform import DEFAULT_INPUT_HW
from deploy.data.io_convention import CHANNELS, VALUE_RANGES, IOConvention
from deploy.convert import sources

FLAGS = flags.FLAGS
flags.DEFINE_string("tflite", None, "a .tflite SR model to evaluate")
flags.DEFINE_string("model", None, "or: a zoo model name (converted in memory)")
flags.DEFINE_string("keras_model", None, "or: your own saved Keras model (tf_keras or Keras 3)")
flags.DEFINE_string("float_tflite", None, "or: your own float .tflite from any framework (converted in memory "
                    "at --precision; --tflite evaluates a .tflite as it is)")
flags.DEFINE_string("custom_objects", None, "--keras_model: a .py file (or module) registering its custom layers")
flags.DEFINE_string("weights", None, "with --model: a .h5 weight file (default: the shipped weights)")
flags.DEFINE_enum("channels", None, CHANNELS, "model I/O channels (default: from the model's report, else rgb)")
flags.DEFINE_enum("value_range", None, VALUE_RANGES, "model I/O range (default: from the report, else 0-1)")
flags.DEFINE_integer("scale", None, "upscaling factor (default: from the model / 3 for zoo)")
flags.DEFINE_enum("precision", "float", UNIFORM_NAMES, "precision for --model (a8w8 = int8, int16x8 = a16w8)")
flags.DEFINE_string("data", None, "folder of HR images (default: the bundled evaluation set)")
flags.DEFINE_string("json", None, "write results as JSON here")
flags.DEFINE_string("input_size", "x".join(map(str, DEFAULT_INPUT_HW)), "fixed LR size for --model")
flags.DEFINE_integer("num_threads", 2, "interpreter threads")
flags.DEFINE_bool("overwrite", False, "replace an existing --json file")
flag_checks.positive("scale", "num_threads")
flag_checks.hw_text("input_size", allow_dynamic=True, maximum=jobs.MAX_INPUT_SIDE)
flags.DEFINE_string("npu_emulate", None, "also run as this NPU computes it, e.g. qualcomm:SM8650 "
                    "(tools/npu_compile.py --list_socs)")
flags.DEFINE_enum("interpreter", "litert", ["litert", "integer"], "what runs the converted model: LiteRT, or for "
                  "a16w8 models `integer` (LiteRT's int16 arithmetic on all cores, bit-identical, 2.7-13x faster on 2 cores "
                  "than LiteRT's single-threaded int16 kernels)")


def _ignored_flags():
    """--tflite is evaluated as it is: flags that only shape a conversion would be ignored."""
    if FLAGS.tflite:
        given = flag_checks.present("precision", "input_size", "weights", "custom_objects")
        if given:
            return (f"{' and '.join(given)} cannot be combined with --tflite (it is evaluated as it is); "
                    "convert at another precision with --model/--keras_model/--float_tflite instead")
    return None


flag_checks.conflicts(["tflite", "precision", "input_size", "weights", "custom_objects"], _ignored_flags)


def _interpreter_conflict():
    if FLAGS.interpreter != "litert" and FLAGS.npu_emulate:
        return "--interpreter integer and --npu_emulate both say what runs the model: pick one"
    return None


flag_checks.conflicts(["interpreter", "npu_emulate"], _interpreter_conflict)


def main(argv):
    del argv
    if sum(map(bool, (FLAGS.tflite, FLAGS.model, FLAGS.keras_model, FLAGS.float_tflite))) != 1:
        fail("give exactly one of --tflite, --model, --keras_model or --float_tflite")
    run_cli(lambda: jobs.check_result_path(FLAGS.json, (FLAGS.tflite, FLAGS.keras_model, FLAGS.float_tflite,
                                                            FLAGS.weights, FLAGS.data),
                                           overwrite=FLAGS.overwrite))
    convention = None
    if FLAGS.channels or FLAGS.value_range:
        convention = run_cli(lambda: IOConvention(FLAGS.channels or "rgb", FLAGS.value_range or "0-1"))
    if FLAGS.npu_emulate:
        return _npu(convention)
    if FLAGS.tflite:
        result = run_cli(lambda: jobs.evaluate_tflite(FLAGS.tflite, data_dir=FLAGS.data, scale=FLAGS.scale,
                                                      num_threads=FLAGS.num_threads, convention=convention,
                                                      interpreter=FLAGS.interpreter))
    else:
        src = run_cli(lambda: sources.resolve(FLAGS.model, FLAGS.scale or 3, keras_model=FLAGS.keras_model,
                                              float_tflite=FLAGS.float_tflite, custom_objects=FLAGS.custom_objects,
                                              weights=FLAGS.weights or True,
                                              channels=FLAGS.channels or "rgb",
                                              value_range=FLAGS.value_range or "0-1"))
        result = run_cli(lambda: jobs.evaluate_source(src, FLAGS.precision, data_dir=FLAGS.data,
                                                      input_hw=jobs.parse_hw(FLAGS.input_size),
                                                      num_threads=FLAGS.num_threads, interpreter=FLAGS.interpreter))
    print(result.table())
    print(f"{result.model} x{result.scale} on {result.dataset}: {result.output_pixels / 1e6:.2f} MP in "
          f"{result.seconds:.2f} s ({result.to_json()['output_megapixels_per_s']} MP/s)")
    run_cli(lambda: jobs.save_result(result, FLAGS.json, overwrite=FLAGS.overwrite))


def _npu(convention):
    if FLAGS.tflite:
        model = FLAGS.tflite
    else:
        model = run_cli(lambda: sources.resolve(FLAGS.model, FLAGS.scale or 3, keras_model=FLAGS.keras_model,
                                              float_tflite=FLAGS.float_tflite, custom_objects=FLAGS.custom_objects,
                                                weights=FLAGS.weights or True, channels=FLAGS.channels or "rgb",
                                                value_range=FLAGS.value_range or "0-1"))
    result = run_cli(lambda: jobs.compare_npu(model, FLAGS.npu_emulate, FLAGS.data, precision=FLAGS.precision,
                                              scale=FLAGS.scale if FLAGS.tflite else None, convention=convention,
                                              num_threads=FLAGS.num_threads,
                                              input_size=jobs.parse_hw(FLAGS.input_size)))
    print(result.table())
    print(f"{result.cpu.model} x{result.cpu.scale} on {result.cpu.dataset}: CPU {result.cpu.seconds:.2f} s, "
          f"{result.soc} NPU emulated {result.npu.seconds:.2f} s")
    if warning := result.warning():
        print(warning, file=sys.stderr)
    run_cli(lambda: jobs.save_result(result, FLAGS.json, overwrite=FLAGS.overwrite))


if __name__ == "__main__":
    flag_checks.main(main)
