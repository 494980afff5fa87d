"""Find the per-layer A8W8/A16W8 policy that runs fastest within a PSNR budget (NAWQ-SR).

  python tools/search_policy.py --model xlsr --scale 3 --budget_db 0.1 --out hybrid.json
  python tools/search_policy.py --model xlsr --scale 3 --budget_db 0.1 --reference float \
      --device_profile nnapi_npu_int16_cpu --out hybrid.json
  python tools/search_policy.py --model xlsr --scale 3 --budget_db 0.1 --npu qualcomm:SM8650 --out hybrid.json
  python tools/search_policy.py --model xlsr --scale 3 --sensitivity --out sens.json   (+ sens.png)
  python tools/search_policy.py --model xlsr --scale 3 --pareto --out front.json       (+ front.png)
  python tools/search_policy.py --model xlsr --scale 3 --sensitivity --workers 0 --out sens.json
  python tools/search_policy.py --model fsrcnn --scale 3 --budget_db 0.1 --act_ranges mse --cle --out hybrid.json
  python tools/search_policy.py --model xlsr --scale 3 --budget_db 0.1 --cluster tcp://10.0.0.5:8786 --out hybrid.json
Quality is measured on validation photos (never the evaluation images); latency is predicted by
a device profile (--device_profile, see deploy/latency/profiles/README.md) or by measured op profiles
(--op_profiles a8w8.jsonl,a16w8.jsonl from tools/adb_bench.py --enable_op_profiling).
`python tools/convert.py --policy hybrid.json` takes the written policy unchanged.
"""
from pathlib import Path

from absl import flags

from deploy.commands import flag_checks, jobs

from deploy.commands import ptq_flags, search_jobs
from deploy.commands.cli import define_source_flags, fail, run_cli, source_from_flags
from deploy.convert.uniform import DEFAULT_INPUT_HW
from deploy.policy_search.solver import REFERENCES

FLAGS = flags.FLAGS
define_source_flags()
# every candidate built with these post-training quantization options (recorded in the policy:
# convert.py --policy applies them again); bias correction depends on the policy: convert-only
ptq_flags.define(bias_correction=False)
flags.DEFINE_string("input_size", "x".join(map(str, DEFAULT_INPUT_HW)), "fixed LR input HxW of the deployed model")
flags.DEFINE_string("val_patch", None, "LR patch HxW quality is judged on (default: --input_size up to "
                    "128x128 pixels, else 64x64: a frame-size model is judged on patches of its weights)")
flags.DEFINE_string("budget_db", None, "allowed PSNR_Y loss in dB below --reference (search)")
flags.DEFINE_float("latency_budget_ms", None, "or the dual search: the best PSNR_Y whose predicted latency "
                   "fits this many ms on the target (e.g. a frame budget)")
flags.DEFINE_enum("reference", "a16w8", (*REFERENCES, "int16x8"), "what --budget_db is measured from "
                  "(int16x8 = a16w8)")
flags.DEFINE_bool("sensitivity", False, "measure per-layer sensitivity instead of searching")
flags.DEFINE_string("sensitivity_file", None, "reuse the drops of an earlier --sensitivity run (same model, "
                    "input size and validation set) instead of measuring them again")
flags.DEFINE_bool("pareto", False, "write the latency-vs-PSNR Pareto front instead of one policy")
flags.DEFINE_string("device_profile", None, f"target class for the latency model (default {search_jobs.DEFAULT_PROFILE})")
flags.DEFINE_string("npu", None, "NPU compile target (e.g. qualcomm:SM8650): price each op where the compiler "
                    "places it (CPU fallbacks, NPU<->CPU switches) and compile the chosen policy for real; "
                    "needs the npu extra")
flags.DEFINE_enum("numerics", "auto", ["auto", "cpu", "npu"], "what judges the budget: the CPU's (LiteRT) "
                  "arithmetic, or the --npu target's, emulated (QNN HTP); auto = npu with --npu, else cpu")
flags.DEFINE_list("op_profiles", None, "or: measured harness results of the all-a8w8 and all-a16w8 models")
flags.DEFINE_list("op_profile_models", None, "the two .tflite files --op_profiles measured (their sha256 "
                  "must match the records)")
flags.DEFINE_string("calib_dir", None, "HR photos for calibration (default: training photos)")
flags.DEFINE_integer("calib_images", 8, "calibration images (4 patches each)")
flags.DEFINE_string("val_dir", None, "HR photos the search measures PSNR on (default: held-out photos)")
flags.DEFINE_integer("val_images", 5, "validation images (6 detailed patches each)")
flags.DEFINE_integer("max_evals", 60, "candidate models the search may measure (after sensitivity)")
flags.DEFINE_integer("pareto_points", 12, "loss budgets swept for --pareto")
flags.DEFINE_bool("per_layer", False, "decide every layer alone (default: an activation or pixel shuffle "
                  "follows the layer it reads)")
flags.DEFINE_string("out", None, "output JSON (policy, sensitivity or front); PNGs and records beside it")
flags.DEFINE_bool("overwrite", False, "replace existing outputs")
flags.DEFINE_enum("oracle", "fast", ["fast", "litert"], "how candidates are measured: fast = simulated "
                  "quantization on float kernels (all cores), the answer confirmed on LiteRT; litert = "
                  "every candidate built and run on LiteRT")
flags.DEFINE_enum("budget_on", "mean", ["mean", "worst"], "what --budget_db bounds: the mean PSNR_Y over "
                  "validation images, or every (the worst) validation image's loss")
flags.DEFINE_enum("drops", "auto", ["auto", "exact", "estimated"], "each layer group's a8w8 drop: simulated "
                  "one model per group (exact), estimated from shared backward passes (estimated), or auto: "
                  "estimated only where the exact drops would take minutes (EDSR-baseline)")
flags.DEFINE_integer("workers", 1, "processes measuring independent candidates (sensitivity) on this "
                     "machine: 0 = one per core, 1 = this process; same results")
flags.DEFINE_string("cluster", None, "or a Dask scheduler address (e.g. tcp://10.0.0.5:8786; `dask scheduler`, "
                    "`dask worker ADDRESS` on machines with srdeploy[cluster]); not with --workers")
flag_checks.positive("calib_images", "val_images", "max_evals")
flag_checks.finite("latency_budget_ms")
flag_checks.at_least("latency_budget_ms", 1e-6, " (milliseconds, e.g. 8)")
flag_checks.at_least("pareto_points", 2)
flag_checks.hw_text("input_size", maximum=jobs.MAX_INPUT_SIDE)
flag_checks.hw_text("val_patch", maximum=jobs.MAX_INPUT_SIDE)


def _mode_conflicts():
    """Flags of one mode given to another would be silently ignored: refuse them."""
    if FLAGS.sensitivity and FLAGS.pareto:
        return "--sensitivity and --pareto are separate runs; pass one"
    mode = "--sensitivity" if FLAGS.sensitivity else "--pareto" if FLAGS.pareto else None
    if FLAGS["budget_db"].present and FLAGS.latency_budget_ms is not None:
        return ("--budget_db (fastest within a PSNR loss) and --latency_budget_ms (best PSNR within a latency) "
                "are two searches; pass one")
    search_only = flag_checks.present("budget_db", "latency_budget_ms", "reference", "max_evals")
    if mode and search_only:
        them = "them" if len(search_only) > 1 else "it"
        return (f"{' and '.join(search_only)} only appl{'y' if len(search_only) > 1 else 'ies'} to a search (no "
                f"--sensitivity/--pareto): {mode} does not use {them}; drop {them} or run the search")
    if not FLAGS.pareto and FLAGS["pareto_points"].present:
        return "--pareto_points only applies with --pareto"
    if FLAGS.sensitivity and FLAGS.sensitivity_file:
        return "--sensitivity measures the drops that --sensitivity_file would reuse; pass one"
    return None


flag_checks.conflicts(["sensitivity", "pareto", "budget_db", "latency_budget_ms", "reference", "max_evals", "pareto_points",
                       "sensitivity_file"], _mode_conflicts)
flag_checks.conflicts(["numerics", "npu"], lambda: (
    "--numerics npu judges on an NPU's emulated arithmetic: name the NPU with --npu (e.g. --npu qualcomm:SM8650)"
    if FLAGS.numerics == "npu" and not FLAGS.npu else None))


def main(argv):
    del argv
    if not FLAGS.out:
        fail("--out is required (e.g. --out hybrid.json)")
    budget = None
    if not (FLAGS.sensitivity or FLAGS.pareto or FLAGS.latency_budget_ms is not None):
        if FLAGS.budget_db is None:
            fail("--budget_db is required for a search (e.g. --budget_db 0.1), or pass --latency_budget_ms / "
                 "--sensitivity / --pareto")
        budget = run_cli(lambda: search_jobs.parse_budget(FLAGS.budget_db))
    hw = run_cli(lambda: jobs.parse_hw(FLAGS.input_size))
    if hw is None:
        fail("the search needs a fixed --input_size (e.g. 64x64)")
    mode = "sensitivity" if FLAGS.sensitivity else "pareto" if FLAGS.pareto else "search"
    config = run_cli(lambda: search_jobs.SearchConfig(
        budget_db=budget, latency_budget_ms=FLAGS.latency_budget_ms, reference=FLAGS.reference,
        budget_on=FLAGS.budget_on, device_profile=FLAGS.device_profile, op_profiles=FLAGS.op_profiles,
        op_profile_models=FLAGS.op_profile_models, input_size=hw,
        val_patch=jobs.parse_hw(FLAGS.val_patch) if FLAGS.val_patch else None, max_evals=FLAGS.max_evals,
        calib_dir=FLAGS.calib_dir, calib_images=FLAGS.calib_images, val_dir=FLAGS.val_dir,
        val_images=FLAGS.val_images, sensitivity_file=FLAGS.sensitivity_file, fuse=not FLAGS.per_layer,
        npu=FLAGS.npu, npu_cache_dir=search_jobs.npu_cache_dir(FLAGS.out) if FLAGS.npu else None,
        numerics=FLAGS.numerics, oracle=FLAGS.oracle, drops=FLAGS.drops, workers=FLAGS.workers,
        cluster=FLAGS.cluster, pareto_points=FLAGS.pareto_points, sens_cache=search_jobs.sens_cache_path(FLAGS.out),
        ptq=ptq_flags.from_flags()))
    run_cli(lambda: search_jobs.check_before_setup(  # outputs, sensitivity file, photo counts: before any work
        mode, FLAGS.out, overwrite=FLAGS.overwrite, sens_file=FLAGS.sensitivity_file,
        inputs=(FLAGS.calib_dir, FLAGS.val_dir, FLAGS.keras_model, FLAGS.float_tflite, FLAGS.weights,
                *(FLAGS.op_profiles or ()), *(FLAGS.op_profile_models or ()))))
    for flag, folder in (("calib_images", FLAGS.calib_dir), ("val_images", FLAGS.val_dir)):
        run_cli(lambda: jobs.check_image_count(flag, folder, FLAGS[flag].value, FLAGS[flag].present))
    src = source_from_flags()
    s = run_cli(lambda: search_jobs.setup(src, config))
    if FLAGS.sensitivity:
        r = run_cli(lambda: search_jobs.run_sensitivity(s, FLAGS.out, overwrite=FLAGS.overwrite))
        print(r["table"])
        print(f"wrote {FLAGS.out} and {r['png']} ({r['report']['evaluations']} models, "
              f"{r['report']['seconds']:.0f} s)")
    elif FLAGS.pareto:
        front = run_cli(lambda: search_jobs.run_pareto(s, FLAGS.out, overwrite=FLAGS.overwrite))
        on = [p for p in front["points"] if p["on_front"]]
        print(f"{'pred. ms':>9}{'PSNR_Y':>9}{'a16w8':>8}")
        for p in on:
            print(f"{p['predicted_ms']:9.3f}{p['psnr_y']:9.3f}{p['a16w8_fraction']:8.0%}")
        print(f"wrote {FLAGS.out} and {Path(FLAGS.out).with_suffix('.png')} ({len(on)} of "
              f"{len(front['points'])} measured policies on the front)")
    elif FLAGS.latency_budget_ms is not None:
        r = run_cli(lambda: search_jobs.run_dual(s, FLAGS.out, overwrite=FLAGS.overwrite))
        print(search_jobs.dual_table(r))
        print(f"wrote {FLAGS.out} (policy) and {search_jobs.search_report_path(Path(FLAGS.out))}")
    else:
        try:
            r = run_cli(lambda: search_jobs.run_search(s, FLAGS.out, overwrite=FLAGS.overwrite))
        except search_jobs.BudgetImpossible as e:
            fail(str(e), 3)
        print(search_jobs.search_table(r))
        print(f"wrote {FLAGS.out} (policy) and {search_jobs.search_report_path(Path(FLAGS.out))}")


if __name__ == "__main__":
    flag_checks.main(main)
