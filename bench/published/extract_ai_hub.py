"""Rebuild bench/published/ai_hub_perf.json from Qualcomm AI Hub's perf.yaml files.

    git clone https://github.com/quic/ai-hub-models && git -C ai-hub-models checkout 52c080d245d2d20c634459208ff2548ce10b3c9f
    python bench/published/extract_ai_hub.py --repo ai-hub-models     (needs PyYAML)

Keeps: the six SR models (x4, 128x128) x {float, w8a8} x {Galaxy S24, Galaxy S25, 8 Elite Gen 5 QRD}
x {tflite, qnn_dlc, onnx}, and every model with both w8a8 and w8a16 on those phones (QNN runtime),
for the w8a16/w8a8 ratios. Every row names its file, commit and YAML key path.
"""
import argparse
import json
import subprocess
from pathlib import Path

COMMIT = "52c080d245d2d20c634459208ff2548ce10b3c9f"
REPO = "quic/ai-hub-models"
SR = ("xlsr", "quicksrnetsmall", "quicksrnetmedium", "quicksrnetlarge", "sesr_m5", "real_esrgan_general_x4v3")
PHONES = {"Samsung Galaxy S24": "snapdragon_8gen3", "Samsung Galaxy S25": "snapdragon_8elite",
          "Snapdragon 8 Elite Gen 5 QRD": "snapdragon_8elitegen5"}
#: dense, high-resolution conv nets (segmentation / detection at 416-640 px), the closest to SR
DENSE = ("bgnet", "deeplabv3_plus_mobilenet", "yolov7", "yolov8_det")


def _yaml(repo: Path, path: str):
    import yaml
    text = subprocess.run(["git", "-C", str(repo), "show", f"{COMMIT}:{path}"], check=True,
                          capture_output=True, text=True).stdout
    return yaml.safe_load(text)


def _row(model, comp, prec, dev, rt, rec, path):
    return {"model": model, "component": comp, "precision": prec, "device": dev,
            "profile": PHONES[dev], "runtime": rt, "ms": rec["inference_time_milliseconds"],
            "layers": rec.get("layer_counts"), "compute_unit": rec.get("primary_compute_unit"),
            "job_id": rec.get("job_id"),
            "source": f"{REPO} @ {COMMIT} {path}: precisions.{prec}.components.{comp}."
                      f"performance_metrics.{dev}.{rt}.inference_time_milliseconds"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--out", default=str(Path(__file__).with_name("ai_hub_perf.json")))
    a = ap.parse_args()
    repo = Path(a.repo)
    files = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", COMMIT,
                            "qai_hub_models/models"], check=True, capture_output=True, text=True).stdout.split()
    sr_rows, ratio_rows = [], []
    for path in sorted(f for f in files if f.endswith("/perf.yaml")):
        model = path.split("/")[-2]
        precs = _yaml(repo, path).get("precisions", {})
        if model in SR:
            for prec in ("float", "w8a8"):
                for comp, c in precs[prec]["components"].items():
                    for dev in PHONES:
                        for rt, rec in c["performance_metrics"].get(dev, {}).items():
                            if rec.get("inference_time_milliseconds"):
                                sr_rows.append(_row(model, comp, prec, dev, rt, rec, path))
        if "w8a16" in precs and "w8a8" in precs:
            for comp, c16 in precs["w8a16"]["components"].items():
                c8 = precs["w8a8"]["components"].get(comp)
                for dev in PHONES:
                    r8 = (c8 or {}).get("performance_metrics", {}).get(dev, {}).get("qnn_dlc", {})
                    r16 = c16["performance_metrics"].get(dev, {}).get("qnn_dlc", {})
                    if r8.get("inference_time_milliseconds") and r16.get("inference_time_milliseconds"):
                        ratio_rows.append({
                            "model": model, "component": comp, "device": dev, "profile": PHONES[dev],
                            "runtime": "qnn_dlc", "w8a8_ms": r8["inference_time_milliseconds"],
                            "w8a16_ms": r16["inference_time_milliseconds"],
                            "ratio": round(r16["inference_time_milliseconds"] / r8["inference_time_milliseconds"], 4),
                            "dense_high_res": model in DENSE,
                            "source": f"{REPO} @ {COMMIT} {path}: precisions.{{w8a8,w8a16}}.components.{comp}."
                                      f"performance_metrics.{dev}.qnn_dlc.inference_time_milliseconds"})
    out = {"about": "Published whole-model latencies from Qualcomm AI Hub (ms per inference; SR models at x4, "
                    "128x128 input, the default of qai_hub_models/models/_shared/super_resolution/model.py). "
                    "Extracted by bench/published/extract_ai_hub.py; each row carries its source.",
           "repo": REPO, "commit": COMMIT, "tag": "v0.46.1", "dense_high_res_models": list(DENSE),
           "sr": sr_rows, "w8a16_ratios": ratio_rows}
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(sr_rows)} SR rows, {len(ratio_rows)} w8a16/w8a8 pairs -> {a.out}")


if __name__ == "__main__":
    main()
