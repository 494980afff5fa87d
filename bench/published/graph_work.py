"""Per-op work of the published architectures' float TFLite graphs (bench/published/graphs.py).

Why a cache: converting 27 graphs (up to 16.7M parameters, up to 640x1280 inputs) takes minutes;
the fit needs only each op's class and work. `python bench/published/graph_work.py` rewrites
bench/results/published_graph_work_0.65.0.json; the fit reads it. The cache is the record: the
TFLite converter's op order can differ from run to run (same ops, another topological order: seen
on 3 of the 31 fit graphs), and the nonlinear fit then lands ~1 % elsewhere, so a recompute keeps
a graph's cached op order where its ops are the same (`--refresh`; `--recompute` rewrites everything).

Per op: TFLite op name, profile op class (deploy.latency.device_profiles.op_class), raw work
(MACs for convs, output elements otherwise: deploy.latency.cost_model.op_work), channel-tiled work
(deploy.latency.htp_tiling.tiled_work, 32-channel tiles), and the activation elements it reads
and writes (channels tiled to 32: the traffic a memory-bound op moves), and whether an NPU compiler
folds it into a neighbour (deploy.latency.htp_fusion).
"""
from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from deploy._files import atomic_write  # noqa: E402

CACHE = ROOT / "bench/results/published_graph_work_0.65.0.json"
TILE = 32


def _channels(op: str, ins: list[int], tensors: dict) -> list[int]:
    """[output channels, input channels per group, groups, kernel h*w] of a conv-like op (else zeros)."""
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(ins) >= 2:
        o, kh, kw, i_g = (int(d) for d in tensors[ins[1]]["shape"])
        if op == "DEPTHWISE_CONV_2D":
            return [i_g, 1, i_g, kh * kw]
        return [o, i_g, max(1, int(tensors[ins[0]]["shape"][-1]) // i_g), kh * kw]
    if op == "TRANSPOSE_CONV" and len(ins) >= 3:
        o, kh, kw, i = (int(d) for d in tensors[ins[1]]["shape"])
        return [o, i, 1, kh * kw]
    if op == "FULLY_CONNECTED" and len(ins) >= 2:
        o, i = (int(d) for d in tensors[ins[1]]["shape"][-2:])
        return [o, i, 1, 1]
    return [0, 0, 0, 0]


def tflite_ops(path: str) -> list[list]:
    """[[op, class, work, tiled work, traffic elements, out ch, in ch/group, groups, kernel area, fused], ...]
    for every op of a float .tflite (out ch .. kernel area 0 for ops that are not convs / FC; fused: 0, or
    1 + the index in htp_fusion.KINDS of the way an NPU compiler folds it away)."""
    from deploy.convert.tflite_io import make_interpreter
    from deploy.latency.cost_model import op_work
    from deploy.latency.htp_fusion import KINDS, fused_ops
    from deploy.latency.htp_tiling import activation_ids, tiled_work, traffic_elements
    interp = make_interpreter(path, delegates=False)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # noqa: SLF001 - op inputs/outputs
    acts = activation_ids(ops, [d["index"] for d in interp.get_input_details()])
    fused = fused_ops(ops, tensors, acts, [d["index"] for d in interp.get_output_details()], tile=TILE)
    out = []
    for k, od in enumerate(ops):
        ins = [int(i) for i in od["inputs"] if i >= 0]
        outs = [int(i) for i in od["outputs"] if i >= 0]
        if not outs:
            continue
        shape = tensors[outs[0]]["shape"]
        out_el = int(math.prod(int(d) for d in shape)) if len(shape) else 1
        klass, work = op_work(od["op_name"], ins, out_el, tensors)
        tiled = tiled_work(od["op_name"], ins, outs, tensors, TILE)
        traffic = traffic_elements(ins, outs, tensors, acts, TILE)
        out.append([od["op_name"], klass, int(work), int(tiled), int(traffic), *_channels(od["op_name"], ins, tensors),
                    1 + KINDS.index(fused[k]) if k in fused else 0])
    return out


def graph_work(name: str) -> dict:
    from bench.published.graphs import GRAPHS
    from models._keras import tf
    g = GRAPHS[name]
    model = g.build(g.input_hw)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{name}.tflite"
        p.write_bytes(conv.convert())
        ops = tflite_ops(str(p))
    return {"ops": ops, "params": int(model.count_params()), "input_hw": list(g.input_hw), "role": g.role,
            "io": io_elements(model), "source": g.source}


def io_elements(model) -> list[int]:
    """[input elements, output elements]: the float I/O the runtime converts at each end."""
    return [sum(int(math.prod(t.shape[1:])) for t in model.inputs), sum(int(math.prod(t.shape[1:])) for t in model.outputs)]


def in_cached_order(new: dict, old: dict | None) -> dict:
    """`new` with its ops in `old`'s order when both hold the same ops (all but the last column), else as is."""
    if not old:
        return new
    pool = [list(o) for o in new["ops"]]
    ordered = []
    for o in old["ops"]:
        k = next((i for i, x in enumerate(pool) if x[:9] == list(o[:9])), None)
        if k is None:
            return new
        ordered.append(pool.pop(k))
    return {**new, "ops": ordered} if not pool else new


def load(names=None, recompute: bool = False, refresh: bool = False) -> dict:
    """{name: graph work}, computing (and caching) the graphs that are missing; `refresh`: every graph
    again, in its cached op order where the ops are the same; `recompute`: every graph again, as converted."""
    from bench.published.graphs import GRAPHS
    data = json.loads(CACHE.read_text()) if CACHE.is_file() and not recompute else {"graphs": {}}
    old = dict(data["graphs"]) if refresh else {}
    missing = [n for n in (names or GRAPHS) if refresh or n not in data["graphs"]]
    for n in missing:
        t0 = time.time()
        data["graphs"][n] = in_cached_order(graph_work(n), old.get(n))
        print(f"  {n}: {len(data['graphs'][n]['ops'])} ops, {data['graphs'][n]['params']:,} parameters, "
              f"{time.time() - t0:.0f} s", flush=True)
        data["about"] = ("per-op work of our float TFLite graphs of the architectures AI Hub measured "
                         "(bench/published/graphs.py at their published input sizes); written by "
                         "bench/published/graph_work.py: [op, class, work, tiled work, traffic elements, out ch, in ch/group, groups, kernel area, "
                         "fused (0, or 1 + index in deploy.latency.htp_fusion.KINDS)]")
        atomic_write(CACHE, json.dumps(data) + "\n")
    return data["graphs"]


if __name__ == "__main__":
    names = [a for a in sys.argv[1:] if not a.startswith("--")]
    load(names or None, recompute="--recompute" in sys.argv, refresh="--refresh" in sys.argv)
