"""What post-training quantization in the search buys: the 0.1-dB hybrid's int16 share per PTQ recipe.

  python bench/search_ptq.py                                   # FSRCNN, ESPCN, IMDN-RTC x3
  python bench/search_ptq.py --models xlsr --labels minmax,mse+clip

Issue #29: the better int8 is, the fewer layers a PSNR budget needs at int16 (1.6-2.1x int8 time
on a phone). Per model and recipe (`search_policy.py --act_ranges ... --clip_output --cle
--adaround`: every candidate built with it, deploy/convert/ptq.search_grids), the same search
(0.1 dB below the a16w8 reference on the shipped validation patches, 64x64, profile htp_npu,
judged on LiteRT's CPU kernels): int16 share of the layer groups, predicted ms, the answer's
PSNR_Y, and its loss against the plain (min/max) a16w8 model as well as against this recipe's own
a16w8 reference (CLE changes the weights, so the two references differ slightly). `minmax` is
the search as before. Writes bench/results/search_ptq.json after every row (a rerun keeps rows of
the same weights unless --rerun) and the README table between `<!-- search_ptq:begin -->` and
`<!-- search_ptq:end -->`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from absl import app, flags

import models
from deploy import provenance
from deploy._files import atomic_write, replace_section

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "search_ptq.json"
BUDGET_DB, PROFILE, HW = 0.1, "htp_npu", (64, 64)

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["fsrcnn", "espcn", "imdn_rtc"], "zoo models")
flags.DEFINE_list("scales", ["3"], "scales")
flags.DEFINE_list("labels", ["minmax", "mse+clip", "mse+clip+cle", "p99.99+clip+cle"],
                  "PTQ recipes (deploy.convert.ptq labels without bc); minmax = the search as before")
flags.DEFINE_bool("rerun", False, "measure rows already in the results again")
flags.DEFINE_string("out", str(OUT), "results JSON")
flags.DEFINE_bool("write_readme", True, "regenerate the README table")


def measure(name: str, scale: int, label: str) -> dict:
    """One search (see the module docstring)."""
    import numpy as np
    import deploy
    from deploy.policy_search import session
    from deploy.policy_search.api import search_with_setup
    src = deploy.load_model(name, scale)
    t0 = time.perf_counter()
    config = deploy.SearchConfig(input_size=HW, device_profile=PROFILE, budget_db=BUDGET_DB,
                                 ptq=None if label == "minmax" else label)
    s = session.setup(src, config)
    try:
        out = search_with_setup(s)
        judge = getattr(s.oracle, "judge", s.oracle)
        a8 = float(np.mean(judge.image_psnrs(s.oracle.uniform("a8w8"))))
    finally:
        s.close()
    r = out.report
    return {"model": name, "scale": scale, "weights": src.weights, "ptq": label, "int16_share": r["a16w8_fraction"],
            "groups": r["groups"], "predicted_ms": round(out.predicted_ms, 4), "psnr_y": round(out.psnr_y, 4),
            "reference_psnr_y": round(r["reference_psnr_y"], 4), "a8w8_psnr_y": round(a8, 4),
            "ratio_to_int8": r["ratio_to_int8"], "policy": out.policy.to_json(),
            "seconds": round(time.perf_counter() - t0, 1)}


def table(rows: list[dict]) -> str:
    plain = {(r["model"], r["scale"]): r["reference_psnr_y"] for r in rows if r["ptq"] == "minmax"}
    out = ["| model | PTQ in the search | int16 share | predicted ms | all-a8w8 loss | answer's loss vs "
           "its a16w8 | vs plain a16w8 |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        base = plain.get((r["model"], r["scale"]))
        vs_plain = "–" if base is None else f"{base - r['psnr_y']:.3f}"
        out.append(f"| {r['model']} x{r['scale']} | {r['ptq']} | {r['int16_share']:.0%} | {r['predicted_ms']:.3f} | "
                   f"{r['reference_psnr_y'] - r['a8w8_psnr_y']:.3f} | {r['reference_psnr_y'] - r['psnr_y']:.3f} | "
                   f"{vs_plain} |")
    return "\n".join(out)


def _measured(out: Path) -> tuple[dict, dict]:
    """The results file (or an empty one) and its rows by (model, scale, recipe)."""
    doc = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    return doc, {(r["model"], r["scale"], r["ptq"]): r for r in doc["rows"]}


def main(argv: list[str]) -> None:
    del argv
    out = Path(FLAGS.out)
    doc, rows = _measured(out)
    order = list(models.MODELS)
    for name in FLAGS.models:
        for scale in (int(s) for s in FLAGS.scales):
            weights = models.weights_path(name, scale)
            for label in FLAGS.labels:
                old = rows.get((name, scale, label))
                if old and not FLAGS.rerun and old.get("weights") == (str(weights.name) if weights else None):
                    continue
                rows[(name, scale, label)] = measure(name, scale, label)
                doc = {"budget_db": BUDGET_DB, "profile": PROFILE, "input_hw": list(HW),
                       "rows": sorted(rows.values(), key=lambda r: (order.index(r["model"]), r["scale"],
                                                                   FLAGS.labels.index(r["ptq"])
                                                                   if r["ptq"] in FLAGS.labels else 99)),
                       "provenance": provenance.collect()}
                atomic_write(out, json.dumps(doc, indent=1) + "\n")
                print(table([rows[(name, scale, label)]]).splitlines()[-1],
                      f"({rows[(name, scale, label)]['seconds']:.0f} s)", flush=True)
    print(table(doc["rows"]))
    if FLAGS.write_readme:
        replace_section(REPO / "README.md", "search_ptq", table(doc["rows"]))


if __name__ == "__main__":
    app.run(main)
