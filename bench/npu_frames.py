"""The zoo's int8 models at video-frame sizes on Qualcomm's NPU, offline: whole or not, and DDR spill.

    python bench/npu_frames.py                     # every shipped weight at x3 and x4, SM8650
    python bench/npu_frames.py --models xlsr --scales 3 --socs SM8650,SM8850
    python bench/npu_frames.py --table_only         # the README table of the results on disk

Per shipped weight: the int8 model every entry point makes (deploy.quantize: the route decided on
the model's 64x64 twin; per-layer routes take the twin's activation ranges, the converter's
calibrates on `--calib_images` shipped photos mirrored out to the frame) at the LR size of a
1920x1080 output frame at x3 (640x360) or a 3840x2160 one at x4 (960x540), compiled
for each SoC (LiteRT's Qualcomm AOT plugin): ops on the NPU / all ops, partitions, the compiler's
DDR spill/fill (activations that do not fit the HTP's on-chip VTCM go to DDR and back) and the
context binary's size. Compile only: no quality or latency is measured here. Writes
bench/results/npu_frames.json after every model and the README table between the npu_frames markers.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from absl import app, flags

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402
from deploy import provenance  # noqa: E402
from deploy._files import atomic_write, replace_marked, sha256_bytes  # noqa: E402

OUT = ROOT / "bench/results/npu_frames.json"
FRAME_LR = {3: (360, 640), 4: (540, 960)}   # LR (H, W) of a 1920x1080 (x3) / 3840x2160 (x4) output frame
BEGIN, END = "<!-- npu_frames:begin -->", "<!-- npu_frames:end -->"

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "zoo models (default: every one with shipped weights)")
flags.DEFINE_list("scales", ["3", "4"], "scales (3: 640x360 LR, 4: 960x540 LR)")
flags.DEFINE_list("socs", ["SM8650"], "Qualcomm SoCs")
flags.DEFINE_integer("calib_images", 8, "shipped calibration photos")
flags.DEFINE_bool("write_readme", True, "regenerate the README table")
flags.DEFINE_bool("table_only", False, "measure nothing: print (and write) the table of the results on disk")


def run(name: str, scale: int, socs) -> list[dict]:
    import deploy
    from deploy import npu
    hw = FRAME_LR[scale]
    base = {"model": name, "scale": scale, "variant": "int8", "input_hw": list(hw)}
    t = time.perf_counter()
    try:
        q = deploy.quantize(deploy.load_model(name, scale), "int8", deploy.QuantizeConfig(calib_images=FLAGS.calib_images),
                            input_size=hw)
    except deploy.SrdeployError as e:
        rows = [{**base, "soc": soc.name, "error": "deploy.quantize: " + " ".join(str(e).split())} for soc in socs]
        print(f"{name} x{scale} int8 {hw[1]}x{hw[0]}: {rows[0]['error']}", flush=True)
        return rows
    route = q.report.get("int8_route", {})
    base.update({"convert_s": round(time.perf_counter() - t, 1), "model_sha256": sha256_bytes(q.tflite_bytes),
                 "calibration": q.report.get("calibration"), "int8_route": route.get("chosen"),
                 "decided_on": route.get("decided_on")})
    rows = []
    for soc in socs:
        row = {**base, "soc": soc.name}
        try:
            r = npu.compile_tflite(q.tflite_bytes, soc).report
            j = r.to_json()
            row.update({"ops_on_npu": r.ops_on_npu, "ops_total": r.ops_total, "partitions": r.partitions,
                        "whole": r.whole, "compile_s": round(r.compile_seconds, 2),
                        "ddr_spill_bytes": j["ddr_spill_bytes"], "ddr_fill_bytes": j["ddr_fill_bytes"],
                        "context_bytes": sum(r.context_binary_bytes),
                        "cpu_ops": [{"op": c.op, "reason": c.reason} for c in r.cpu_ops]})
        except deploy.SrdeployError as e:
            row["error"] = " ".join(str(e).split())
        rows.append(row)
        print(f"{name} x{scale} int8 {hw[1]}x{hw[0]} {soc.name}: " + (
            f"{row['ops_on_npu']}/{row['ops_total']} ops, {row['partitions']} partition(s), DDR spill "
            f"{row['ddr_spill_bytes'] / 2**20:.1f} MiB / fill {row['ddr_fill_bytes'] / 2**20:.1f} MiB, "
            f"convert {row['convert_s']} s, compile {row['compile_s']} s" if "ops_total" in row else row["error"]), flush=True)
    return rows


def _mib(b: int) -> str:
    return f"{b / 2**20:.1f}"


def table(rows: list[dict]) -> str:
    whole = sum(1 for r in rows if r.get("whole"))
    lines = [f"Measured by `python bench/npu_frames.py` ({len(rows)} compiles, {whole} whole: every op on the NPU in one "
             "partition, ✓): the zoo's int8 models at the LR size of a 1920x1080 (x3) or 3840x2160 (x4) output frame. "
             "DDR spill/fill: activation bytes the compiler moves to DDR and back because they do not fit the on-chip VTCM. "
             "int8 route: the one `deploy.quantize` / `convert.py --precision int8` takes, decided on the model's 64x64 twin; "
             "the per-layer routes take their activation ranges from that twin too (deploy/convert/twin.py), the "
             "converter's calibrates at the frame.",
             "", "| model | LR input | SoC | int8 route | NPU ops (partitions) | DDR spill / fill MiB | context MiB | convert s | compile s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "ops_total" not in r:
            lines.append(f"| {r['model']} x{r['scale']} | {r['input_hw'][1]}x{r['input_hw'][0]} | {r['soc']} | "
                         f"{r.get('int8_route') or ''} | n/a: {r['error'][:200]} | | | | |")
            continue
        lines.append(f"| {r['model']} x{r['scale']} | {r['input_hw'][1]}x{r['input_hw'][0]} | {r['soc']} | "
                     f"{r.get('int8_route') or '?'} | {r['ops_on_npu']}/{r['ops_total']} ({r['partitions']}){' ✓' if r['whole'] else ''} | "
                     f"{_mib(r['ddr_spill_bytes'])} / {_mib(r['ddr_fill_bytes'])} | {_mib(r['context_bytes'])} | "
                     f"{r['convert_s']} | {r['compile_s']} |")
    reasons = sorted({f"{c['op']}: {c['reason']}" for r in rows for c in r.get("cpu_ops", [])})
    if reasons:
        lines += ["", "Ops left on the CPU: " + "; ".join(reasons)]
    return "\n".join(lines)


def main(argv):
    del argv
    from deploy.npu.socs import resolve_soc
    socs = [resolve_soc(s) for s in FLAGS.socs]
    wanted = [(n, s) for n, s in models.available_weights() if s in map(int, FLAGS.scales)
              and (FLAGS.models is None or n in FLAGS.models)]
    wanted.sort(key=lambda t: (list(models.MODELS).index(t[0]), t[1]))
    old = json.loads(OUT.read_text())["rows"] if OUT.is_file() else []
    rows = [r for r in old if (r["model"], r["scale"]) not in set(wanted)]
    if FLAGS.table_only:
        rows, wanted = old, []
    for name, scale in wanted:
        rows += run(name, scale, socs)
        rows.sort(key=lambda r: (list(models.MODELS).index(r["model"]), r["scale"], r["soc"]))
        atomic_write(OUT, json.dumps({"command": "python bench/npu_frames.py", "rows": rows,
                                      "provenance": provenance.collect()}, indent=1) + "\n")
    text = table(rows)
    print(text)
    if FLAGS.write_readme:
        replace_marked(ROOT / "README.md", BEGIN, END, f"{BEGIN}\n{text}\n{END}")


if __name__ == "__main__":
    app.run(main)
