"""The NPU compiler's folds (deploy/latency/htp_fusion.py): which ops of a real TFLite graph fold away, and a
profile with a "fusion" block prices them at nothing on both of the product's pricing paths, as the fit does."""
import json
import sys
from pathlib import Path

import pytest

from deploy.latency import cost_model, device_profiles
from deploy.latency.float_graph import _details
from deploy.latency.htp_fusion import fused_ops
from deploy.latency.htp_tiling import activation_ids
from deploy.latency.predict import predict_tflite

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")
def prep():
    """The TFLite converter's graph (as AI Hub's graphs are priced: bench/latency_published.measured_graph) of
    8x8x3 -> conv 32 ("c1") -> clip to [0, 1] (MINIMUM + RELU: the converter does not fuse it) -> conv 32 ("c2",
    its output read twice: its clip cannot fold) -> clip ("k2") and a conv 32 ("c3") of it -> concat (64
    channels: two whole tiles) -> conv 8 ("c4") -> concat with c4's 8 channels (not whole tiles) -> clip as the
    graph output."""
    from deploy.convert.per_layer import prepare_tflite
    from models._keras import keras, tf
    keras.utils.set_random_seed(0)
    L = keras.layers
    x_in = keras.Input((8, 8, 3), batch_size=1)
    a = L.ReLU(max_value=1.0, name="k1")(L.Conv2D(32, 3, padding="same", name="c1")(x_in))
    b = L.Conv2D(32, 3, padding="same", name="c2")(a)
    b_clip = L.ReLU(max_value=1.0, name="k2")(b)
    c = L.Conv2D(32, 1, name="c3")(b)
    cat = L.Concatenate(name="cat64")([b_clip, c])
    d = L.Conv2D(8, 1, name="c4")(cat)
    cat2 = L.Concatenate(name="cat72")([cat, d])
    model = keras.Model(x_in, L.ReLU(max_value=1.0, name="k3")(cat2))
    return prepare_tflite(tf.lite.TFLiteConverter.from_keras_model(model).convert(), rewrite_prelu=False)


def _fused(prep, kinds=("act", "concat")):
    interp, ops, tensors = _details(prep)
    acts = activation_ids(ops, [d["index"] for d in interp.get_input_details()])
    got = fused_ops(ops, tensors, acts, [d["index"] for d in interp.get_output_details()], kinds)
    return [(od["op_name"], mo.layer, got.get(k, "")) for k, (od, mo) in enumerate(zip(ops, prep.ops))]


def test_which_ops_fold(prep):
    rows = _fused(prep)
    folded = [(op, layer, kind) for op, layer, kind in rows if kind]
    # c1's clip (MINIMUM then RELU) folds into c1; c2's does not (c2's output also feeds c3); the 64-channel concat
    # of whole tiles folds; the 72-channel one does not; the output clip follows a concat, not a conv
    assert folded == [("MINIMUM", "c1", "act"), ("RELU", "c1", "act"), ("CONCATENATION", "cat64/concat", "concat")], rows
    assert [r for r in _fused(prep, ("act",)) if r[2]] == folded[:2]
    assert not any(r[2] for r in _fused(prep, ()))


def _profile(kinds):
    obj = json.loads((device_profiles.PROFILE_DIR / "snapdragon_8gen3.json").read_text())
    obj.pop("fusion", None)
    obj["invoke_overhead_us"] = {"a8w8": 60, "source": "test"}   # one start-up cost: not shared out over the ops
    if kinds:
        obj["fusion"] = {"kinds": list(kinds), "channels": 32, "source": "test"}
    return device_profiles.from_json(obj, "t")


def test_a_profile_with_fusion_prices_folded_ops_at_nothing_on_both_paths(prep):
    plain, folding = _profile(()), _profile(("act", "concat"))
    policy = {l: "a8w8" for l in prep.layers}
    cm0 = cost_model.from_device_profile(prep, plain, model="m", scale=1)
    cm1 = cost_model.from_device_profile(prep, folding, model="m", scale=1)
    assert cm1.layer_ms["cat64/concat"]["float"] == 0 < cm0.layer_ms["cat64/concat"]["float"]
    assert cm1.layer_ms["c1"]["a8w8"] < cm0.layer_ms["c1"]["a8w8"]      # the conv without its clip
    for layer in ("c2", "k2", "c3", "c4", "cat72/concat"):   # what does not fold costs what it cost
        assert cm1.layer_ms[layer] == pytest.approx(cm0.layer_ms[layer], rel=1e-9), layer
    assert cm1.predict_ms(policy) < cm0.predict_ms(policy)
    p0 = predict_tflite(prep.float_tflite, plain, name="m")
    p1 = predict_tflite(prep.float_tflite, folding, name="m")
    fused = [r for r in p1["breakdown"] if r.get("fused")]
    assert [r["fused"] for r in fused] == ["act", "act", "concat"] and all(r["ms"] == 0 for r in fused)
    assert p1["ms"] < p0["ms"]


def test_a_malformed_fusion_block_is_refused_in_one_line():
    obj = json.loads((device_profiles.PROFILE_DIR / "snapdragon_8gen3.json").read_text())
    obj["fusion"] = {"kinds": ["everything"], "source": "test"}
    with pytest.raises(device_profiles.LatencyError, match="'fusion' kinds must be a list of act, concat"):
        device_profiles.from_json(obj, "t")


def test_the_fit_folds_the_same_ops_from_the_graph_work_cache():
    """bench/published/graph_work.py records each op's fold (htp_fusion); a fused form of the fit drops those ops'
    work, traffic and overhead (QuickSRNet-Small: each conv's clip to [0, 1], MINIMUM + RELU, folds)."""
    from bench.published import roofline_fit as rf
    g = json.loads((ROOT / "bench/results/published_graph_work_0.65.0.json").read_text())["graphs"]["quicksrnetsmall"]
    base = "roofline_max+convs_none+elementwise_raw+weights_separate+io+mem_per_precision+split+rel"
    plain = rf.op_arrays(g, rf.FORMS[base])
    name, form = rf.fuse_variant(base, "act")
    assert rf.ALL_FORMS[name] == form and "folded by the compiler (no cost): act" in form["form"]
    folded = rf.op_arrays(g, form)
    clips = sum(o[0] in ("MINIMUM", "RELU") for o in g["ops"])
    assert clips == 8 and [o[9] for o in g["ops"] if o[0] in ("MINIMUM", "RELU")] == [1] * 8
    assert len(plain["g"]) - len(folded["g"]) == clips and plain["ops"] - folded["ops"] == clips
    assert folded["work"].sum() == pytest.approx(plain["work"].sum() - sum(o[2] for o in g["ops"] if o[9]) / 1e9)


def test_a_refreshed_graph_keeps_its_cached_op_order():
    """The converter may order the same ops differently from run to run; --refresh keeps the cached order then
    (the fit lands elsewhere on another order), and takes the new graph when its ops differ."""
    from bench.published.graph_work import in_cached_order
    a, b, c = ["CONV_2D", "conv_kxk", 9, 9, 4, 8, 3, 1, 9, 0], ["RELU", "activation", 2, 2, 4, 0, 0, 0, 0, 1], \
        ["ADD", "add_mul", 2, 2, 6, 0, 0, 0, 0, 0]
    old = {"ops": [a[:9], b[:9], c[:9]]}                       # a cache from before the fold column
    assert in_cached_order({"ops": [b, c, a], "io": [1, 2]}, old) == {"ops": [a, b, c], "io": [1, 2]}
    changed = {"ops": [b, a]}
    assert in_cached_order(changed, old) is changed and in_cached_order(changed, None) is changed
