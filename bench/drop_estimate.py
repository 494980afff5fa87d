"""Estimated vs exact sensitivity drops (`--drops estimated` vs `--drops exact`), per zoo model.

  python bench/drop_estimate.py                                   # EDSR-baseline x3, x4; IMDN-RTC, FSRCNN x3
  python bench/drop_estimate.py --models xlsr,abpn --scales 3,4

Per model x scale, one search session (`tools/search_policy.py`'s set-up, fast oracle): every
group's drop simulated (exact) and estimated from shared backward passes
(deploy/policy_search/drop_estimate.py), each timed. Reports Spearman rank correlation, the
largest absolute error (dB), and whether the most sensitive group is the same. Prints a table;
writes bench/results/drop_estimate.json (rows replaced in place) and the README's table.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from absl import app, flags

import deploy
from deploy import provenance
from deploy._files import replace_marked
from deploy.policy_search import session
from deploy.convert import sources
from deploy.convert import uniform
from deploy.policy_search import drop_estimate
from deploy.policy_search import sensitivity

FLAGS = flags.FLAGS
flags.DEFINE_list("runs", ["edsr_baseline:3", "edsr_baseline:4", "imdn_rtc:3", "fsrcnn:3"],
                  "model:scale pairs")
flags.DEFINE_integer("probes", drop_estimate.PROBES, "Hutchinson probes")
flags.DEFINE_string("out", None, "JSON results (default bench/results/drop_estimate.json)")

REPO = Path(__file__).resolve().parent.parent
HW = uniform.DEFAULT_INPUT_HW


def _spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def run_one(name: str, scale: int) -> dict:
    s = session.setup(sources.resolve(name, scale), deploy.SearchConfig(input_size=HW, oracle="fast"))
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    est, record = drop_estimate.estimate(s.oracle, s.groups, probes=FLAGS.probes, progress=False)
    est_s = time.perf_counter() - t
    t = time.perf_counter()
    exact = sensitivity.measure(s.oracle, s.groups, s.macs, both_directions=False, progress=False).drop_db
    exact_s = time.perf_counter() - t
    est, exact = np.asarray(est), np.asarray(exact)
    return {"model": name, "scale": scale, "groups": len(s.groups), "probes": FLAGS.probes,
            "exact_s": round(exact_s, 1), "estimated_s": round(est_s, 1),
            "spearman": round(_spearman(exact, est), 3), "max_abs_err_db": round(float(np.max(np.abs(est - exact))), 4),
            "median_abs_err_db": round(float(np.median(np.abs(est - exact))), 4),
            "largest_exact_drop_db": round(float(np.min(exact)), 4),
            "same_most_sensitive": bool(np.argmin(est) == np.argmin(exact)),
            "exact_drops_db": [round(float(v), 4) for v in exact], "estimated_drops_db": [round(float(v), 4) for v in est],
            "record": record, "load_avg": [round(load0, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count(),
            "provenance": provenance.collect({"validation": s.oracle.val.to_json(),
                                              "calibration": s.oracle.calib.to_json()})}


def main(argv):
    del argv
    out = Path(FLAGS.out or REPO / "bench" / "results" / "drop_estimate.json")
    rows = json.loads(out.read_text())["rows"] if out.is_file() else []
    print(f"{'model':<16}{'x':>2}{'groups':>7}{'exact s':>9}{'est. s':>8}{'spearman':>9}{'max err dB':>11}"
          f"{'largest drop':>13}{'same top':>9}")
    for run in FLAGS.runs:
        name, scale = run.split(":")
        r = run_one(name, int(scale))
        rows = [x for x in rows if (x["model"], x["scale"]) != (r["model"], r["scale"])] + [r]
        out.write_text(json.dumps({"note": "estimated (drop_estimate.py) vs exact (simulated) sensitivity drops "
                                   "on the validation patches", "rows": rows}, indent=2) + "\n")
        print(f"{name:<16}{scale:>2}{r['groups']:>7}{r['exact_s']:>9.0f}{r['estimated_s']:>8.0f}{r['spearman']:>9.3f}"
              f"{r['max_abs_err_db']:>11.4f}{r['largest_exact_drop_db']:>13.4f}{str(r['same_most_sensitive']):>9}",
              flush=True)
    write_readme(rows)
    print(f"wrote {out} and the README's table")


BEGIN, END = "<!-- drop_estimate:begin -->", "<!-- drop_estimate:end -->"


def write_readme(rows: list[dict]) -> None:
    """The README's table, regenerated from the results (never typed by hand)."""
    t = ("| model | groups | exact drops s | estimated s | Spearman | max error dB | largest drop dB | "
         "same most sensitive | load avg |\n" + "|---" * 9 + "|\n")
    for r in sorted(rows, key=lambda r: (r["model"], r["scale"])):
        t += (f"| {r['model']} x{r['scale']} | {r['groups']} | {r['exact_s']:.0f} | {r['estimated_s']:.0f} | "
              f"{r['spearman']:.3f} | {r['max_abs_err_db']:.4f} | {r['largest_exact_drop_db']:.4f} | "
              f"{'yes' if r['same_most_sensitive'] else 'no'} | {r['load_avg'][0]:.1f}, {r['load_avg'][1]:.1f} |\n")
    body = (f"{BEGIN}\nMeasured by `python bench/drop_estimate.py` ({rows[0]['probes']} probes, the 30 validation "
            "patches; exact = every drop simulated, as `--drops exact`):\n\n" + t + END)
    replace_marked(REPO / "README.md", BEGIN, END, body)


if __name__ == "__main__":
    app.run(main)
