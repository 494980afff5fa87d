"""One interpreter vs one per core: how fast TFLiteRunner measures int8 and a16w8 models.

  python bench/runner_workers.py --model imdn_rtc --scale 4

LiteRT runs int16 activations with single-threaded reference kernels, so `num_threads=2` buys
an a16w8 model nothing; two 1-thread interpreters working on different tiles or patches do.
Times `runner.map` on the search's quality oracle (30 validation patches) and on the default
evaluation set (what `deploy.evaluate` does) with workers=1 and workers=cores. Writes
bench/results/runner_workers.json (one row per model x scale, other rows kept).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from absl import app, flags

import deploy
from deploy import provenance
from deploy.convert import uniform

from deploy.data import images as image_io

from deploy.policy_search import session

from deploy.convert import sources
from deploy.evaluation.runners import TFLiteRunner, available_cores
from deploy.policy_search.space import NARROW, WIDE

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "imdn_rtc", "zoo model")
flags.DEFINE_integer("scale", 4, "scale")
flags.DEFINE_integer("repeats", 3, "timed repeats (the median is kept)")

OUT = Path(__file__).resolve().parent / "results" / "runner_workers.json"


def _median_s(fn, repeats: int) -> float:
    fn()  # warm-up: first invoke allocates
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv):
    del argv
    src = sources.resolve(FLAGS.model, FLAGS.scale)
    s = session.setup(src, deploy.SearchConfig(input_size=uniform.DEFAULT_INPUT_HW))
    evals = [x.lr for x in image_io.eval_samples(FLAGS.scale)]
    cores = available_cores()
    row = {"model": FLAGS.model, "scale": FLAGS.scale, "cores": cores,
           "oracle_patches": len(s.oracle.val.lr), "eval_images": len(evals)}
    print(f"{'precision':<10}{'job':<8}{'1 interpreter s':>17}{f'{cores} interpreters s':>18}{'speed-up':>10}")
    for precision in (NARROW, WIDE):
        tflite = s.oracle.build(s.oracle.uniform(precision))[0]
        for job, images in (("oracle", list(s.oracle.val.lr)), ("eval", evals)):
            one, many = (TFLiteRunner(tflite, FLAGS.scale, workers=w) for w in (1, cores))
            t1 = _median_s(lambda: one.map(images), FLAGS.repeats)
            tn = _median_s(lambda: many.map(images), FLAGS.repeats)
            row[f"{precision}_{job}"] = {"one_s": round(t1, 3), "many_s": round(tn, 3), "speedup": round(t1 / tn, 2)}
            print(f"{precision:<10}{job:<8}{t1:>17.2f}{tn:>18.2f}{t1 / tn:>9.2f}x")
    row["provenance"] = provenance.collect({"validation": s.oracle.val.to_json(), "evaluation": provenance.dataset_json(
        "default", image_io.default_eval_images())})
    rows = [r for r in (json.loads(OUT.read_text())["rows"] if OUT.is_file() else [])
            if (r["model"], r["scale"]) != (row["model"], row["scale"])]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"rows": rows + [row]}, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    app.run(main)
