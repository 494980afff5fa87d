"""Predicted latency of a model on a device profile (no phone needed).

  python tools/predict_latency.py --model quicksrnet_small --scale 4 --precision a8w8 \
      --device_profile snapdragon_8gen3 --input_size 128x128
  python tools/predict_latency.py --model xlsr --scale 3 --policy hybrid.json --device_profile snapdragon_8elite
  python tools/predict_latency.py --tflite m.tflite --device_profile snapdragon_8gen3 --json
  python tools/predict_latency.py --model xlsr --scale 3 --frame 1920x1080 --fps 30
The last line printed is the predicted latency in ms; --json prints the per-layer breakdown as
JSON instead. --frame WxH prices one output video frame whole and in LR tiles (with the model's
receptive radius as halo), cheapest first; --fps N says which phone profiles reach N frames a
second with the cheapest plan (exit 2, naming the best, when none does). Profiles: deploy/latency/profiles/README.md (the snapdragon_* ones are fitted on
Qualcomm AI Hub's published phone latencies; README 'Predicted vs published phone latency').
"""
import json

from absl import flags

from deploy.commands import flag_checks
from deploy.commands.cli import fail, run_cli
from deploy.convert.precisions import LAYER_NAMES
from deploy.latency.predict import predict, predict_frame

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "zoo model name")
flags.DEFINE_string("keras_model", None, "or: a saved tf_keras model file (.h5/.keras/SavedModel)")
flags.DEFINE_string("tflite", None, "or: a .tflite, priced op by op at its tensors' precisions")
flags.DEFINE_integer("scale", 4, "upscaling factor")
flags.DEFINE_enum("precision", "a8w8", LAYER_NAMES, "uniform precision (zoo/Keras model); int8 = a8w8, "
                  "int16x8 = a16w8")
flags.DEFINE_string("policy", None, "or: a per-layer policy JSON (tools/search_policy.py output)")
flags.DEFINE_string("device_profile", "snapdragon_8gen3", "profile name or JSON file")
flags.DEFINE_string("input_size", "128x128", "fixed LR input HxW")
flags.DEFINE_bool("json", False, "print the full result with the per-layer breakdown as JSON")
flags.DEFINE_string("frame", None, "an output video frame WxH (e.g. 1920x1080): cost per frame, whole and tiled")
flags.DEFINE_float("fps", None, "with --frame: which phone profiles reach this frame rate")
PHONES = ("snapdragon_8gen3", "snapdragon_8elite", "snapdragon_8elitegen5")


def _ignored_flags():
    """--precision prices a zoo/Keras model uniformly; a .tflite or a policy brings its own."""
    if FLAGS["precision"].present and (FLAGS.tflite or FLAGS.policy):
        other = "--tflite (priced at its tensors' own precisions)" if FLAGS.tflite else "--policy (it sets every layer)"
        return f"--precision cannot be combined with {other}; drop --precision"
    if FLAGS.tflite and FLAGS.policy:
        return "--policy prices a zoo/Keras model; a --tflite is priced at its own precisions: pass one"
    return None


flag_checks.conflicts(["precision", "tflite", "policy"], _ignored_flags)


def _frame_flags():
    """--frame sets the input size from the frame and a tile plan; --fps needs a frame."""
    if FLAGS.fps is not None and not FLAGS.fps > 0:
        return f"--fps {FLAGS.fps:g} must be a positive number of frames per second"
    if FLAGS.fps is not None and not FLAGS.frame:
        return "--fps needs --frame WxH (the output frame to reach it for)"
    if FLAGS.frame and FLAGS["input_size"].present:
        return "--frame sets the input size (frame / scale, or tiles): drop --input_size"
    if FLAGS.frame and FLAGS.tflite:
        return "--frame prices a --model or --keras_model at any size; a .tflite has one fixed size"
    return None


flag_checks.conflicts(["frame", "fps", "input_size", "tflite"], _frame_flags)
flag_checks.finite("fps")


def _hw(text: str) -> tuple:
    from deploy.latency.device_profiles import LatencyError
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise LatencyError(f"--input_size '{text}' must be HxW, e.g. 128x128") from None
    if min(h, w) < 8:
        raise LatencyError(f"--input_size '{text}' must have sides >= 8")
    return h, w


def _wh(text: str) -> tuple:
    from deploy.latency.device_profiles import LatencyError
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise LatencyError(f"--frame '{text}' must be WxH, e.g. 1920x1080") from None
    return w, h


def frame_main() -> None:
    """--frame (and --fps): a tile-plan table per profile, the cheapest plan's ms last."""
    from deploy.latency import frames
    profiles = [FLAGS.device_profile] + ([p for p in PHONES if p != FLAGS.device_profile] if FLAGS.fps is not None else [])
    res = run_cli(lambda: predict_frame(profiles=profiles, frame_wh=_wh(FLAGS.frame), scale=FLAGS.scale,
                                        model=FLAGS.model, keras_model=FLAGS.keras_model, precision=FLAGS.precision,
                                        policy=FLAGS.policy))
    if FLAGS.json:
        print(json.dumps(res, indent=1, default=float))
    else:
        lr = "x".join(map(str, res["lr_hw"][::-1]))
        print(f"{res['model']} x{res['scale']} {res['precision']}: {FLAGS.frame} output frame from {lr} LR, "
              f"halo {res['halo_lr']} LR px")
        for name, r in res["profiles"].items():
            print(f"{name}: fixed {r['fixed_ms']:.3f} ms a call + {r['ms_per_mpixel_lr']:.2f} ms per LR megapixel")
            for p in r["plans"]:
                print(f"  {p['label']:<18}{p['invokes']:>6} call(s) of {p['input_hw'][1]}x{p['input_hw'][0]:<8}"
                      f"{p['ms']:>10.3f} ms/frame {p['fps']:>9.1f} fps")
    best = {name: r["plans"][0] for name, r in res["profiles"].items()}
    if FLAGS.fps is not None:
        ok, top = run_cli(lambda: frames.fps_verdict({n: p["fps"] for n, p in best.items()}, FLAGS.fps))
        if not ok:
            fail(f"no phone profile reaches {FLAGS.fps:g} fps for {res['model']} x{res['scale']} at {FLAGS.frame}: the best "
                 f"is {top} at {best[top]['fps']:.1f} fps ({best[top]['label']}); try a lighter precision or model")
        print(f"reach {FLAGS.fps:g} fps: {', '.join(ok)}")
    if not FLAGS.json:
        print(f"{best[FLAGS.device_profile]['ms']:.4f}")


def main(argv):
    del argv
    if FLAGS.frame:
        return frame_main()
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
