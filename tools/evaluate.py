"""PSNR_Y/SSIM_Y on the desktop with LiteRT.

  python tools/evaluate.py --tflite m.tflite [--data DIR] [--json out.json]
  python tools/evaluate.py --model xlsr --scale 3 --precision int8 [--data DIR] [--json out.json]
"""
from absl import app, flags

from deploy.cli import fail, run_cli
from deploy import jobs
from deploy.convert import DEFAULT_INPUT_HW, PRECISIONS

FLAGS = flags.FLAGS
flags.DEFINE_string("tflite", None, "a .tflite SR model to evaluate")
flags.DEFINE_string("model", None, "or: a zoo model name (converted in memory)")
flags.DEFINE_integer("scale", None, "upscaling factor (default: from the model / 3 for zoo)")
flags.DEFINE_enum("precision", "float", PRECISIONS, "precision for --model")
flags.DEFINE_string("data", None, "folder of HR images (default: the bundled evaluation set)")
flags.DEFINE_string("json", None, "write results as JSON here")
flags.DEFINE_string("input_size", "x".join(map(str, DEFAULT_INPUT_HW)), "fixed LR size for --model")
flags.DEFINE_integer("num_threads", 2, "interpreter threads")


def main(argv):
    del argv
    if bool(FLAGS.tflite) == bool(FLAGS.model):
        fail("give exactly one of --tflite or --model")
    if FLAGS.tflite:
        result = run_cli(lambda: jobs.evaluate_tflite(FLAGS.tflite, data_dir=FLAGS.data, scale=FLAGS.scale,
                                                      num_threads=FLAGS.num_threads))
    else:
        result = run_cli(lambda: jobs.evaluate_zoo(FLAGS.model, FLAGS.scale or 3, FLAGS.precision,
                                                   data_dir=FLAGS.data, input_hw=jobs.parse_hw(FLAGS.input_size),
                                                   num_threads=FLAGS.num_threads))
    print(result.table())
    print(f"{result.model} x{result.scale} on {result.dataset}: {result.output_pixels / 1e6:.2f} MP in "
          f"{result.seconds:.2f} s ({result.to_json()['output_megapixels_per_s']} MP/s)")
    run_cli(lambda: jobs.save_result(result, FLAGS.json))


if __name__ == "__main__":
    app.run(main)
