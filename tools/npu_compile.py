"""Compile a .tflite for Qualcomm phone NPUs (HTP) offline and report what runs where.

  python tools/npu_compile.py --tflite m.tflite --soc SM8650 [--soc SM8550 ...] --out DIR [--json]
  python tools/npu_compile.py --list_socs
Writes DIR/<stem>_qualcomm_<SoC>.tflite (ready for LiteRT's NPU runtime on the phone) and
DIR/<stem>_npu.json; prints a table (or the JSON with --json). Needs: pip install -e ".[npu]".
"""
import json
import sys
from pathlib import Path

from absl import flags

from deploy._files import atomic_write, check_outputs
from deploy.commands.cli import run_cli, wording
from deploy.errors import SrdeployError

FLAGS = flags.FLAGS
flags.DEFINE_string("tflite", None, "the .tflite to compile (not yet compiled, fixed shapes)")
flags.DEFINE_multi_string("soc", [], "target SoC, e.g. SM8650 or qualcomm:SM8650 (repeat for several)")
flags.DEFINE_string("out", None, "output folder for the compiled models and the JSON report")
flags.DEFINE_bool("overwrite", False, "replace compiled models already in --out")
flags.DEFINE_bool("list_socs", False, "list the known SoCs and exit")
flags.DEFINE_bool("json", False, "print the JSON report instead of the table")


def _fail(message: str) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(2)


def main(argv):
    del argv
    from deploy import npu
    if FLAGS.list_socs:
        return print(npu.list_socs_text())
    if not FLAGS.tflite or not FLAGS.soc or not FLAGS.out:
        _fail("--tflite, --soc and --out are required (e.g. --tflite m.tflite --soc SM8650 --out npu/)")
    stem = Path(FLAGS.tflite).stem
    report_path = Path(FLAGS.out) / f"{stem}_npu.json"
    try:
        socs = [npu.resolve_soc(s) for s in FLAGS.soc]
        out_dir = Path(FLAGS.out)
        if out_dir.exists() and not out_dir.is_dir():
            raise SrdeployError(f"--out {out_dir} is a file; --out names a folder (e.g. --out npu/)")
        # every output checked before the compile: never over the model compiled, never over a
        # file without --overwrite, and a folder we can write in
        outputs = [npu.compiled_path(out_dir, stem, soc) for soc in dict.fromkeys(socs)] + [report_path]
        check_outputs(outputs, (FLAGS.tflite,), overwrite=FLAGS.overwrite)
        results = npu.compile_for_socs(FLAGS.tflite, socs)
        paths = npu.write_compiled(results, FLAGS.out, stem, overwrite=FLAGS.overwrite)
    except SrdeployError as e:
        _fail(wording(e))
    reports = [r.report for r in results]
    doc = npu.report_json(reports, [str(p) for p in paths])
    run_cli(lambda: atomic_write(report_path, json.dumps(doc, indent=2) + "\n", overwrite=FLAGS.overwrite))
    if FLAGS.json:
        return print(json.dumps(doc, indent=2))
    print(npu.report_table(reports))
    print("wrote " + ", ".join(str(p) for p in paths) + f"; report: {report_path}")


if __name__ == "__main__":
    from deploy.commands import flag_checks
    flag_checks.main(main)
