"""How well can whole-model phone latencies of standard CNNs predict SR networks? (issue 27, step 1)

    python bench/latency_fit_study.py        (~1 min from the cached graph work; the cache itself:
                                              python bench/published/graph_work.py, ~12 min on 2 cores)

Data: every published latency in the qai-hub-models 0.65.0 wheel for the architectures
bench/published/graphs.py builds (bench/published/ai_hub_perf_0.65.0.json, each row with its
file and YAML key path). FIT rows: the role-"fit" networks of bench/published/graphs.py (35 non-SR
networks: classifiers; dense prediction, restoration and inpainting nets at their published sizes; a
face-attribute net with PReLU).
TEST rows: every SR network AI Hub publishes (x4, 128x128, 28K to 16.7M parameters), never fitted.
For each phone (Galaxy S24 / S25 / S26), runtime (tflite: float, w8a8; qnn_dlc: float, w8a8,
w8a16) and model form (bench/published/latency_fit.py FORMS), the form is scored by
leave-one-model-out cross-validation on the FIT rows alone (the rule that would pick it), then
fitted on all FIT rows and scored once on the TEST rows with the fit's own algebra (every form,
chosen or not: the diagnostic behind bench/fit_published_profiles.py, which writes the profiles;
bench/latency_published.py scores those through the product's pricing). Writes
bench/results/latency_fit_study.json and prints the table.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.published import latency_fit as lf  # noqa: E402
from deploy._files import atomic_write  # noqa: E402

PUBLISHED = ROOT / "bench/published/ai_hub_perf_0.65.0.json"
WORK = ROOT / "bench/results/published_graph_work_0.65.0.json"
PREC = {"float": "float", "w8a8": "a8w8", "w8a16": "a16w8"}
RUNTIMES = {"tflite": ("float", "a8w8"), "qnn_dlc": ("float", "a8w8", "a16w8")}
PHONES = ("snapdragon_8gen3", "snapdragon_8elite", "snapdragon_8elitegen5")


def study(published: dict, graphs: dict) -> list[dict]:
    out = []
    for rt, precs in RUNTIMES.items():
        for ph in PHONES:
            rows = [dict(r, precision=PREC[r["precision"]]) for r in published["rows"]
                    if r["runtime"] == rt and r["profile"] == ph and r["model"] in graphs and r["all_on_npu"]]
            fit_rows = [r for r in rows if graphs[r["model"]]["role"] == "fit"]
            test_rows = [r for r in rows if graphs[r["model"]]["role"] == "sr_test"]
            assert not {r["model"] for r in fit_rows} & {r["model"] for r in test_rows}
            for name, form in lf.FORMS.items():
                feats = {m: lf.features(g, form) for m, g in graphs.items()}
                cv = lf.summary(lf.leave_one_model_out(fit_rows, feats, precs, lf.groups_of(form)))
                params = lf.fit(fit_rows, feats, precs, lf.groups_of(form))
                errs = lf.rel_errors(test_rows, feats, params)
                out.append({"runtime": rt, "phone": ph, "form": name, "form_text": form["form"],
                            "fit_rows": len(fit_rows), "cv_on_fit_rows": cv, "test_on_sr_rows": lf.summary(errs),
                            "not_identified": params["not_identified"], "params": lf.rates(params),
                            "test_rows": [{"model": r["model"], "precision": r["precision"], "published_ms": r["ms"],
                                           "predicted_ms": round(r["ms"] * (1 + e), 4), "rel_error": round(e, 4)}
                                          for r, e in zip(test_rows, errs)]})
    return out


def table(res: list[dict]) -> str:
    lines = ["| runtime | phone | form | fit rows | CV median error (fit rows) | chosen by CV | SR test median error | "
             "SR test worst factor |", "|---|---|---|---|---|---|---|---|"]
    best = {}
    for r in res:
        k = (r["runtime"], r["phone"])
        if k not in best or r["cv_on_fit_rows"]["median_abs"] < best[k]["cv_on_fit_rows"]["median_abs"]:
            best[k] = r
    for r in res:
        t = r["test_on_sr_rows"]
        lines.append(f"| {r['runtime']} | {r['phone']} | {r['form']} | {r['fit_rows']} | "
                     f"{100 * r['cv_on_fit_rows']['median_abs']:.0f} % | {'yes' if best[(r['runtime'], r['phone'])] is r else ''} | "
                     f"{100 * t['median_abs']:.0f} % | {2.718281828 ** t['max_abs_log']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    t0 = time.time()
    published = json.loads(PUBLISHED.read_text())
    graphs = json.loads(WORK.read_text())["graphs"]
    res = study(published, graphs)
    chosen = {(r["runtime"], r["phone"]): r for r in sorted(res, key=lambda r: -r["cv_on_fit_rows"]["median_abs"])}
    for r in res:   # per-row SR predictions kept for the form CV chooses (the others: their summary)
        if chosen[(r["runtime"], r["phone"])] is not r:
            r.pop("test_rows")
    # one line per result (48 forms x 6 phone/runtime pairs): the file stays ~1 MB and diffs by form
    body = ",\n".join(json.dumps(r) for r in res)
    head = json.dumps({"command": "python bench/latency_fit_study.py", "published": PUBLISHED.name,
                       "wheel_sha256": published["wheel_sha256"], "seconds": round(time.time() - t0, 1)})
    atomic_write(ROOT / "bench/results/latency_fit_study.json", f'{head[:-1]}, "results": [\n{body}\n]}}\n')
    print(table(res))


if __name__ == "__main__":
    main()
