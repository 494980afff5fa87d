"""Predicted latency of a model on a device profile (no phone needed).

  python tools/predict_latency.py --model quicksrnet_small --scale 4 --precision a8w8 \
      --device_profile snapdragon_8gen3 --input_size 128x128
  python tools/predict_latency.py --model xlsr --scale 3 --policy hybrid.json --device_profile snapdragon_8elite
  python tools/predict_latency.py --tflite m.tflite --device_profile snapdragon_8gen3 --json
The last line printed is the predicted latency in ms; --json prints the per-layer breakdown as
JSON instead. Profiles: deploy/latency/profiles/README.md (the snapdragon_* ones are fitted on
Qualcomm AI Hub's published phone latencies; README 'Predicted vs published phone latency').
"""
import json

from absl import flags

from deploy.commands import flag_checks
from deploy.commands.cli import run_cli
from deploy.latency.predict import predict

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "zoo model name")
flags.DEFINE_string("keras_model", None, "or: a saved tf_keras model file (.h5/.keras/SavedModel)")
flags.DEFINE_string("tflite", None, "or: a .tflite, priced op by op at its tensors' precisions")
flags.DEFINE_integer("scale", 4, "upscaling factor")
flags.DEFINE_enum("precision", "a8w8", ["a8w8", "a16w8", "float"], "uniform precision (zoo/Keras model)")
flags.DEFINE_string("policy", None, "or: a per-layer policy JSON (tools/search_policy.py output)")
flags.DEFINE_string("device_profile", "snapdragon_8gen3", "profile name or JSON file")
flags.DEFINE_string("input_size", "128x128", "fixed LR input HxW")
flags.DEFINE_bool("json", False, "print the full result with the per-layer breakdown as JSON")


def _ignored_flags():
    """--precision prices a zoo/Keras model uniformly; a .tflite or a policy brings its own."""
    if FLAGS["precision"].present and (FLAGS.tflite or FLAGS.policy):
        other = "--tflite (priced at its tensors' own precisions)" if FLAGS.tflite else "--policy (it sets every layer)"
        return f"--precision cannot be combined with {other}; drop --precision"
    if FLAGS.tflite and FLAGS.policy:
        return "--policy prices a zoo/Keras model; a --tflite is priced at its own precisions: pass one"
    return None


flag_checks.conflicts(["precision", "tflite", "policy"], _ignored_flags)


def _hw(text: str) -> tuple:
    from deploy.latency.device_profiles import LatencyError
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise LatencyError(f"--input_size '{text}' must be HxW, e.g. 128x128") from None
    if min(h, w) < 8:
        raise LatencyError(f"--input_size '{text}' must have sides >= 8")
    return h, w


def main(argv):
    del argv
    res = run_cli(lambda: predict(profile=FLAGS.device_profile, model=FLAGS.model, scale=FLAGS.scale,
                                  precision=FLAGS.precision, input_hw=_hw(FLAGS.input_size),
                                  policy=FLAGS.policy, tflite=FLAGS.tflite, keras_model=FLAGS.keras_model))
    if FLAGS.json:
        print(json.dumps(res, indent=1, default=float))
        return
    for r in res["breakdown"]:
        print(f"{r['layer'][:48]:<50}{r['precision']:<14}{r['ms']:.4f} ms")
    print(f"{res['model']} x{res['scale']} {res['precision']} on {res['profile']} at "
          f"{'x'.join(map(str, res['input_hw']))}:")
    print(f"{res['ms']:.4f}")


if __name__ == "__main__":
    flag_checks.main(main)
