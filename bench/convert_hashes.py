"""Converted models stay byte-identical: sha256 of every zoo model's x3 conversion.

  python bench/convert_hashes.py                   # compare with bench/results/convert_hashes.json
  python bench/convert_hashes.py --record          # (re)write that file
  python bench/convert_hashes.py --models xlsr,espcn

Per zoo model with shipped x3 weights, through the public API (`deploy.quantize`, as
`tools/convert.py` does): `int8` (the better int8 route), `a16w8` and the per-layer quantizer at
all-a8w8 (`Policy.uniform(src, "a8w8")`). A refactor that changes no behaviour must change no
hash: the run exits 1 and names each model whose bytes differ from the recorded ones.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from absl import app, flags

import deploy
import models

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "zoo models (default: every one with shipped x3 weights)")
flags.DEFINE_bool("record", False, "write the hashes instead of comparing with them")
flags.DEFINE_string("results", "bench/results/convert_hashes.json", "the recorded hashes")
SCALE = 3
ROUTES = ("int8", "a16w8", "per_layer_a8w8")


def hashes(name: str) -> dict[str, str]:
    src = deploy.load_model(name, SCALE)
    out = {}
    for route in ROUTES:
        policy = deploy.Policy.uniform(src, "a8w8") if route == "per_layer_a8w8" else route
        out[route] = hashlib.sha256(deploy.quantize(src, policy).tflite_bytes).hexdigest()
    return out


def main(argv):
    del argv
    names = FLAGS.models or sorted(n for n, s in models.registry.available_weights() if s == SCALE)
    path = Path(FLAGS.results)
    recorded = json.loads(path.read_text())["models"] if path.exists() else {}
    found, bad = {}, []
    for name in names:
        t = time.perf_counter()
        found[name] = hashes(name)
        same = found[name] == recorded.get(name)
        print(f"{name} x{SCALE}: {' '.join(h[:12] for h in found[name].values())} "
              f"({time.perf_counter() - t:.0f} s){'' if FLAGS.record else ' same' if same else ' DIFFERENT'}")
        if not same:
            bad.append(name)
    if FLAGS.record:
        path.write_text(json.dumps({"scale": SCALE, "routes": list(ROUTES),
                                    "models": {**recorded, **found}}, indent=2) + "\n")
        print(f"wrote {path}")
        return 0
    if bad:
        print(f"converted bytes differ from {path}: {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"all {len(names)} models x {len(ROUTES)} routes byte-identical to {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
