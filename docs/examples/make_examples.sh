#!/usr/bin/env bash
# Regenerates docs/examples/search (XLSR x3 sensitivity + Pareto front) and docs/examples/xlsr_x3
# (the deployment report) from the shipped weights and photos, as a user would make them.
#   bash docs/examples/make_examples.sh      (about 6 min on 2 cores)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-python}"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
cd "$W"
"$PY" "$ROOT/tools/search_policy.py" --model xlsr --scale 3 --sensitivity --out sens.json
"$PY" "$ROOT/tools/search_policy.py" --model xlsr --scale 3 --pareto --sensitivity_file sens.json --out front.json
"$PY" "$ROOT/tools/search_policy.py" --model xlsr --scale 3 --budget_db 0.1 --sensitivity_file sens.json --out hybrid.json
# the report's models, benchmarked on this desktop (no phone here), then the report with them
"$PY" "$ROOT/tools/report.py" --model xlsr --scale 3 --policy hybrid.json --sensitivity sens.json \
    --pareto front.json --out xlsr_x3
"$PY" "$ROOT/tools/adb_bench.py" --device=desktop --delegate=xnnpack --num_threads 2 --trials 3 --num_runs 20 --results results.jsonl \
    $(for m in float int8 a16w8 policy; do echo "--model=xlsr_x3/inputs/models/model_$m.tflite"; done)
"$PY" "$ROOT/tools/report.py" --model xlsr --scale 3 --policy hybrid.json --sensitivity sens.json \
    --pareto front.json --results results.jsonl --out xlsr_x3 --overwrite
mkdir -p "$ROOT/docs/examples/search"
cp sens.json "$ROOT/docs/examples/search/xlsr_x3_sens.json"
cp sens.png "$ROOT/docs/examples/search/xlsr_x3_sens.png"
cp front.json "$ROOT/docs/examples/search/xlsr_x3_front.json"
cp front.png "$ROOT/docs/examples/search/xlsr_x3_front.png"
rm -rf "$ROOT/docs/examples/xlsr_x3"
cp -r xlsr_x3 "$ROOT/docs/examples/xlsr_x3"
echo "wrote docs/examples/search and docs/examples/xlsr_x3"
