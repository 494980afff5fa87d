"""Rebuild bench/published/ai_hub_perf_0.65.0.json from the qai-hub-models 0.65.0 wheel.

    pip download --no-deps qai-hub-models==0.65.0 -d /tmp/qai
    python bench/published/extract_ai_hub_wheel.py --wheel /tmp/qai/qai_hub_models-0.65.0-py3-none-any.whl

(needs PyYAML, which the dev install brings). The wheel is read in place, never unpacked into or
shipped with the repo: only the extracted rows are, each naming its file inside the wheel and its
YAML key path. Kept: every model whose architecture bench/published/graphs.py can build offline
(the latency fit's CNNs and the SR test models), on the Galaxy S24 / S25 / S26 and the 8 Elite
Gen 6 QRD, every runtime (tflite, qnn_dlc, onnx) and precision (float, w8a8, w8a16) published,
with the manifest's input resolution and parameter count.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.published.graphs import GRAPHS  # noqa: E402

VERSION = "0.65.0"
WHEEL = f"qai_hub_models-{VERSION}-py3-none-any.whl"
PHONES = {"Samsung Galaxy S24": "snapdragon_8gen3", "Samsung Galaxy S25": "snapdragon_8elite",
          "Samsung Galaxy S26": "snapdragon_8elitegen5", "Snapdragon 8 Elite Gen 6 QRD": "snapdragon_8elitegen6"}
PRECISIONS = ("float", "w8a8", "w8a16")


def _yaml(z: zipfile.ZipFile, path: str):
    import yaml
    return yaml.safe_load(z.read(path)) or {}


def rows_of(z: zipfile.ZipFile, model: str) -> tuple[list[dict], dict]:
    """Every published latency of one AI Hub model on our phones, and its manifest facts."""
    base = f"qai_hub_models/models/{model}"
    man = _yaml(z, f"{base}/manifest.yaml").get("technical_details", {})
    facts = {"input_resolution": man.get("Input resolution"), "parameters": man.get("Number of parameters"),
             "source": f"qai-hub-models=={VERSION} wheel, {base}/manifest.yaml: technical_details"}
    perf = _yaml(z, f"{base}/perf.yaml").get("precisions", {})
    rows = []
    for prec in PRECISIONS:
        for comp, c in perf.get(prec, {}).get("components", {}).items():
            for dev, profile in PHONES.items():
                for rt, rec in c.get("performance_metrics", {}).get(dev, {}).items():
                    ms = rec.get("inference_time_milliseconds")
                    if not ms:
                        continue
                    lc = rec.get("layer_counts") or {}
                    rows.append({"model": model, "component": comp, "precision": prec, "device": dev,
                                 "profile": profile, "runtime": rt, "ms": float(ms), "layer_counts": lc,
                                 "all_on_npu": lc.get("npu") == lc.get("total") and bool(lc.get("total")),
                                 "compute_unit": rec.get("primary_compute_unit"), "job_id": rec.get("job_id"),
                                 "source": f"qai-hub-models=={VERSION} wheel, {base}/perf.yaml: precisions.{prec}."
                                           f"components.{comp}.performance_metrics.{dev}.{rt}.inference_time_milliseconds"})
    return rows, facts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", required=True, help=f"path to {WHEEL} (pip download --no-deps qai-hub-models=={VERSION})")
    ap.add_argument("--out", default=str(Path(__file__).with_name(f"ai_hub_perf_{VERSION}.json")))
    a = ap.parse_args()
    sha = hashlib.sha256(Path(a.wheel).read_bytes()).hexdigest()
    rows, facts = [], {}
    with zipfile.ZipFile(a.wheel) as z:
        for g in GRAPHS.values():
            r, f = rows_of(z, g.ai_hub_id)
            rows += r
            facts[g.ai_hub_id] = f
    out = {"about": "Published whole-model phone latencies (ms per inference) from Qualcomm AI Hub, as shipped in the "
                    f"qai-hub-models {VERSION} wheel (PyPI). Extracted by bench/published/extract_ai_hub_wheel.py; "
                    "every row names its file in the wheel and YAML key path.",
           "wheel": WHEEL, "wheel_sha256": sha, "phones": PHONES, "models": facts, "rows": rows}
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(rows)} rows of {len(facts)} models -> {a.out}")


if __name__ == "__main__":
    main()
