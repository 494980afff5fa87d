"""How fast the integer interpreter runs the zoo's a16w8 models, next to LiteRT, and that it agrees.

  python bench/integer_interpreter.py            # every shipped weight whose a16w8 model it runs
  python bench/integer_interpreter.py --models edsr_baseline --scales 2

Per model: the card's a16w8 model (TFLiteConverter, 64x64 input, default calibration), a batch of
real-photo 64x64 tiles (the calibration set's), timed on deploy/evaluation/integer_interpreter.py
(one call per 16 tiles, after a warm-up call that compiles) and on LiteRT with one thread per tile
(its int16 kernels are single-threaded; TFLiteRunner runs one such interpreter per core), and the
outputs compared byte for byte. Models with an op it does not implement are listed as such.
Writes bench/results/integer_interpreter.json and the README table between its markers.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from absl import app, flags

import models
from deploy import provenance
from deploy._files import replace_marked
from deploy.convert import uniform
from deploy.convert.tflite_io import make_interpreter
from deploy.data import calibration
from deploy.evaluation.integer_interpreter import IntegerInterpreter, IntegerModelUnsupported
from deploy.evaluation.runners import BATCH_TILES, available_cores
from models.registry import available_weights

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "models (default: every shipped one)")
flags.DEFINE_list("scales", None, "scales (default: every shipped one)")
flags.DEFINE_integer("tiles", 16, "real-photo 64x64 tiles per model")
flags.DEFINE_bool("write_readme", True, "update README.md's table")

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "results" / "integer_interpreter.json"
README = REPO / "README.md"
BEGIN, END = "<!-- integer_interpreter:begin -->", "<!-- integer_interpreter:end -->"


def measure(name: str, scale: int, n_tiles: int) -> dict:
    hw = uniform.DEFAULT_INPUT_HW
    fixed = models.with_fixed_shape(models.build(name, scale, weights=True), name, scale, hw)
    tfl = uniform.convert_uniform(fixed, "a16w8", calib=calibration.calibration_set(scale, hw)).tflite
    row = {"model": name, "scale": scale, "tiles": n_tiles}
    try:
        ours = IntegerInterpreter(tfl)
    except IntegerModelUnsupported as e:
        return {**row, "unsupported": str(e)}
    tiles = np.asarray(calibration.calibration_set(scale, hw, seed=11).patches, np.float32)
    tiles = np.resize(tiles, (n_tiles, *tiles.shape[1:]))  # repeats if the set is smaller
    ours.set_tensor(ours.input, tiles[:BATCH_TILES])
    t0 = time.perf_counter()
    ours.invoke()  # warm-up: traces and compiles once per batch shape
    row["compile_s"] = round(time.perf_counter() - t0, 1)
    got, t0 = [], time.perf_counter()
    for i in range(0, n_tiles, BATCH_TILES):
        ours.set_tensor(ours.input, tiles[i:i + BATCH_TILES])
        ours.invoke()
        got.append(ours.get_tensor(ours.output))
    row["integer_ms_per_tile"] = round((time.perf_counter() - t0) / n_tiles * 1000, 1)
    got = np.concatenate(got)
    ref = make_interpreter(tfl, num_threads=1)
    i_in, i_out = ref.get_input_details()[0]["index"], ref.get_output_details()[0]["index"]
    same, t0 = 0, time.perf_counter()
    for k in range(n_tiles):
        ref.set_tensor(i_in, tiles[k:k + 1])
        ref.invoke()
        same += bool(np.array_equal(ref.get_tensor(i_out)[0], got[k]))
    row["litert_1thread_ms_per_tile"] = round((time.perf_counter() - t0) / n_tiles * 1000, 1)
    row["identical_tiles"] = same
    row["speedup_vs_litert_per_core"] = round(row["litert_1thread_ms_per_tile"] / available_cores()
                                              / row["integer_ms_per_tile"], 1)
    return row


def table(rows: list[dict], cores: int) -> str:
    lines = ["| model | scale | integer ms / tile | LiteRT ms / tile (1 thread) | vs LiteRT on "
             f"{cores} cores | identical tiles |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "unsupported" in r:
            lines.append(f"| {r['model']} | x{r['scale']} | not run: {r['unsupported'].split(' (it runs')[0]} | | | |")
        else:
            lines.append(f"| {r['model']} | x{r['scale']} | {r['integer_ms_per_tile']} | {r['litert_1thread_ms_per_tile']}"
                         f" | {r['speedup_vs_litert_per_core']}x | {r['identical_tiles']} / {r['tiles']} |")
    return "\n".join(lines)


def main(argv):
    del argv
    pairs = [(n, s) for n, s in available_weights()
             if (not FLAGS.models or n in FLAGS.models) and (not FLAGS.scales or str(s) in FLAGS.scales)]
    rows = []
    for name, scale in pairs:
        rows.append(measure(name, scale, FLAGS.tiles))
        print(json.dumps(rows[-1]), flush=True)
    cores = available_cores()
    out = {"rows": rows, "cores": cores, "command": "python bench/integer_interpreter.py",
           "provenance": provenance.collect()}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(table(rows, cores))
    if FLAGS.write_readme and not FLAGS.models and not FLAGS.scales:
        body = (f"{BEGIN}\n{table(rows, cores)}\n\nPer 64x64 tile of real photos, the card's a16w8 models; "
                f"`vs LiteRT on {cores} cores`: LiteRT's time per tile divided by {cores} (one single-threaded "
                "interpreter per core, as TFLiteRunner runs them) over the integer interpreter's (all cores, 16 tiles "
                f"per call). Generated by `python bench/integer_interpreter.py`.\n{END}")
        replace_marked(README, BEGIN, END, body)


if __name__ == "__main__":
    app.run(main)
