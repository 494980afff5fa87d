"""The search's three arithmetics side by side per zoo model, and what judging on the NPU changes.

  python bench/npu_numerics.py                       # the small zoo models (x3; AI Hub's at x4)
  python bench/npu_numerics.py --models fsrcnn --scales 3

Per model x scale, on the search's own validation patches (64x64 LR, 5 shipped held-out photos x
6 patches) and the target SM8650:
  * uniform per-layer a8w8 and a16w8 (the models a search starts from): PSNR_Y on the fast
    simulation (deploy/convert/fake_quant.py, LiteRT's arithmetic in float), on LiteRT's CPU
    kernels, and on the NPU (the compiled model in QNN HTP emulation); simulation minus NPU;
  * the 0.1-dB search (profile htp_npu + the real SM8650 placement) judged on the CPU
    (`--numerics cpu`) and on the NPU (`--numerics npu`): int16 share, predicted ms, and each
    answer's loss on the NPU against the NPU's a16w8 (the loss the phone shows).

Writes bench/results/npu_numerics.json after every model (a cut-off run keeps its rows; a rerun
skips models already measured with the same weights unless --rerun) and the README table between
`<!-- npu_numerics:begin -->` and `<!-- npu_numerics:end -->`. Emulation is compute-bound: minutes
per model for the small ones on 2 cores, much longer for EDSR-baseline / QuickSRNet-L /
Real-ESRGAN-General (run them with --models when there is time). Compiled models and per-image
emulated PSNRs are cached in --cache_dir, so a run cut off in the middle of a model resumes there.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from absl import app, flags

import models
from deploy import cache_dirs, provenance
from deploy._files import atomic_write, replace_section

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "npu_numerics.json"
TARGET, BUDGET_DB, PROFILE, HW = "qualcomm:SM8650", 0.1, "htp_npu", (64, 64)
SMALL = ("fsrcnn", "espcn", "xlsr", "abpn", "imdn_rtc", "quicksrnet_small", "quicksrnet_medium", "sesr_m5")

FLAGS = flags.FLAGS
flags.DEFINE_list("models", list(SMALL), "zoo models, in this order")
flags.DEFINE_list("scales", ["3"], "scales (a model without weights at a scale runs at its first shipped one)")
flags.DEFINE_bool("rerun", False, "measure models already in the results again")
flags.DEFINE_string("out", str(OUT), "results JSON")
flags.DEFINE_bool("write_readme", True, "regenerate the README table")
flags.DEFINE_string("cache_dir", str(cache_dirs.cache_dir("npu_numerics")),
                    "compiled models and per-image emulated PSNRs (reused by a rerun that was cut off)")


def _mean(v) -> float:
    return round(float(np.mean(v)), 4)


def measure(name: str, scale: int, cache: Path) -> dict:
    """One model's row (see the module docstring)."""
    import deploy
    from deploy.policy_search import session
    from deploy.policy_search.api import search_with_setup
    src = deploy.load_model(name, scale)
    t0 = time.perf_counter()
    config = deploy.SearchConfig(input_size=HW, device_profile=PROFILE, npu=TARGET, npu_cache_dir=cache,
                                 numerics="npu", budget_db=BUDGET_DB)
    on_npu = session.setup(src, config)
    row: dict = {"model": name, "scale": scale, "weights": src.weights, "input_hw": list(HW),
                 "validation": on_npu.oracle.val.to_json()}
    try:
        o = on_npu.oracle
        for p in ("a8w8", "a16w8"):
            u = o.uniform(p)
            sim, npu_ = o.image_psnrs(u), o.judge.image_psnrs(u)
            cpu = o.measure_images(o.build(u, smoke=False)[0])  # LiteRT's CPU kernels
            row[p] = {"simulated": _mean(sim), "litert_cpu": _mean(cpu), "npu_emulated": _mean(npu_),
                      "sim_minus_npu_db": _mean(sim - npu_), "cpu_minus_npu_db": _mean(cpu - npu_),
                      "max_image_sim_minus_npu_db": round(float(np.max(np.abs(sim - npu_))), 4)}
        ref = float(np.mean(o.judge.image_psnrs(o.uniform("a16w8"))))
        answers = {}
        npu_out = search_with_setup(on_npu)
        answers["npu"] = npu_out
        answers["cpu"] = deploy.search(src, config.replace(numerics="cpu"))
        for judged, out in answers.items():
            layers = dict(out.policy.layers)
            got = float(np.mean(o.judge.image_psnrs({n: layers.get(n, out.policy.default) for n in o.layers})))
            r = out.report
            row[f"judged_on_{judged}"] = {
                "numerics": r["numerics"], "int16_share": r["a16w8_fraction"], "groups": r["groups"],
                "predicted_ms": round(out.predicted_ms, 4), "npu_loss_db": round(ref - got, 4),
                "within_budget_on_npu": bool(got >= ref - BUDGET_DB - 1e-9), "policy": out.policy.to_json()}
    finally:
        on_npu.close()
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def table(rows: list[dict]) -> str:
    head = ("| model | a8w8 sim / CPU / NPU | sim − NPU | a16w8 sim / CPU / NPU | sim − NPU "
            "| CPU-judged: int16, ms, NPU loss | NPU-judged: int16, ms, NPU loss |\n|---|---|---|---|---|---|---|")
    out = [head]
    for r in rows:
        a8, a16, c, n = r["a8w8"], r["a16w8"], r["judged_on_cpu"], r["judged_on_npu"]
        cell = lambda j: (f"{j['int16_share']:.0%}, {j['predicted_ms']:.3f}, {j['npu_loss_db']:.3f}"  # noqa: E731
                          + ("" if j["within_budget_on_npu"] else " (over)"))
        out.append(f"| {r['model']} x{r['scale']} | {a8['simulated']:.3f} / {a8['litert_cpu']:.3f} / "
                   f"{a8['npu_emulated']:.3f} | {a8['sim_minus_npu_db']:+.3f} | {a16['simulated']:.3f} / "
                   f"{a16['litert_cpu']:.3f} / {a16['npu_emulated']:.3f} | {a16['sim_minus_npu_db']:+.3f} | "
                   f"{cell(c)} | {cell(n)} |")
    return "\n".join(out)


def main(argv: list[str]) -> None:
    del argv
    out = Path(FLAGS.out)
    doc = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    rows = {(r["model"], r["scale"]): r for r in doc["rows"]}
    from models.registry import available_weights
    shipped = available_weights()
    cache = Path(FLAGS.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    for name in FLAGS.models:
        scales = [int(s) for s in FLAGS.scales if (name, int(s)) in shipped] or \
                 sorted(s for n, s in shipped if n == name)[:1]
        for scale in scales:
            old = rows.get((name, scale))
            weights = models.weights_path(name, scale)
            if old and not FLAGS.rerun and old.get("weights") == (str(weights.name) if weights else None):
                print(f"{name} x{scale}: kept (measured before; --rerun to measure again)")
                continue
            row = measure(name, scale, cache)
            rows[(name, scale)] = row
            doc = {"target": TARGET, "budget_db": BUDGET_DB, "profile": PROFILE,
                   "rows": sorted(rows.values(), key=lambda r: (list(models.MODELS).index(r["model"]), r["scale"])),
                   "provenance": provenance.collect()}
            atomic_write(out, json.dumps(doc, indent=1) + "\n")
            print(table([row]).splitlines()[-1], f"({row['seconds']:.0f} s)", flush=True)
    print(table(doc["rows"]))
    if FLAGS.write_readme:
        replace_section(REPO / "README.md", "npu_numerics", table(doc["rows"]))


if __name__ == "__main__":
    app.run(main)
