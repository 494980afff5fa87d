"""The phone profiles' fit (bench/fit_published_profiles.py): standard CNNs only, reproducible, and
an NNLS that recovers what it should."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import fit_published_profiles as fit  # noqa: E402
from bench.published import latency_fit as lf  # noqa: E402
from bench.published.graphs import GRAPHS  # noqa: E402
from deploy.latency import device_profiles  # noqa: E402
from deploy.latency.htp_fusion import KINDS  # noqa: E402


@pytest.fixture(scope="module")
def built():
    return fit.build(reuse_cv=True)   # the roofline forms' CV scores as shipped (minutes to recompute; checked below)


def test_a_shipped_roofline_cv_score_is_what_the_cv_gives():
    """One roofline form's leave-one-model-out score recomputed from the fit rows equals the shipped table's
    (the table the form choice read, every roofline form in it; `python bench/fit_published_profiles.py`
    recomputes them all)."""
    from bench.published import roofline_fit as rf
    res = json.loads((ROOT / "bench/results/fit_published_profiles.json").read_text())
    roof = sorted((k for k in res["cv_by_form"] if k in rf.FORMS), key=lambda k: res["cv_by_form"][k]["median_abs"])
    assert set(roof) == set(rf.FORMS)
    published = json.loads(fit.PUBLISHED.read_text())
    graphs = json.loads(fit.WORK.read_text())["graphs"]
    assert fit._cv_roofline(published, graphs, roof[0]) == pytest.approx(res["cv_by_form"][roof[0]], abs=2e-4)


def test_no_sr_network_is_in_any_fit(built):
    res, _ = built
    fitted = {r["model"] for p in res["per_phone"].values() for r in p["fit_rows"]}
    fitted |= {m for p in res["per_phone"].values() for m in p["qnn_a16w8"]["models"]}
    sr = {n for n, g in GRAPHS.items() if g.role == "sr_test"}
    assert len(fitted) >= 15 and not fitted & sr
    assert res["chosen_form"] == min(res["cv_by_form"], key=lambda k: res["cv_by_form"][k]["median_abs"])


def test_shipped_profiles_are_what_the_fit_writes(built):
    _, profiles = built
    for name, prof in profiles.items():
        shipped = json.loads((device_profiles.PROFILE_DIR / f"{name}.json").read_text())
        assert json.loads(json.dumps(prof)) == shipped, f"{name}: rerun python bench/fit_published_profiles.py"


def test_nnls_recovers_known_rates_and_flags_unused_ones():
    rng = np.random.default_rng(0)
    feats = {f"g{i}": {"ops": int(rng.integers(10, 300)), "conv": float(rng.uniform(0.1, 50)),
                       "depthwise": float(rng.uniform(0, 0.3)), "elementwise": 0.0} for i in range(12)}
    truth = {"cols": lf.columns(("float", "a8w8")), "x": [0.1, 0.003, 1 / 5.0, 1 / 0.2, 0.0, 0.001, 1 / 20.0, 1 / 0.5, 0.0]}
    rows = [{"model": m, "precision": p, "ms": lf.predict(f, p, truth)} for m, f in feats.items() for p in ("float", "a8w8")]
    got = lf.rates(lf.fit(rows, feats, ("float", "a8w8")))
    assert got["float"]["rate"]["conv"] == pytest.approx(5000, rel=1e-6)
    assert got["a8w8"]["rate"]["depthwise"] == pytest.approx(500, rel=1e-6)
    assert got["invoke_us"] == pytest.approx(100, rel=1e-6)
    assert got["a8w8"]["rate"]["elementwise"] is None        # no elementwise work: not identified
    assert max(abs(e) for e in lf.leave_one_model_out(rows, feats, ("float", "a8w8"))) < 1e-6


def test_nnls_recovers_the_memory_terms_of_a_form_that_has_them():
    """weights / io / traffic are columns like the others: with them in the form, known rates come back."""
    rng = np.random.default_rng(1)
    form = dict(lf.FORMS["convs_none+elementwise_raw+traffic+weights+io"])
    groups = lf.groups_of(form)
    assert groups == ("conv", "depthwise", "elementwise", "traffic", "weights", "io")
    feats = {f"g{i}": {"ops": int(rng.integers(10, 300)), **{g: float(rng.uniform(0.01, 5)) for g in groups}}
             for i in range(20)}
    cols = lf.columns(("float", "a8w8"), groups)
    x = [0.05] + [float(v) for v in rng.uniform(0.001, 0.5, len(cols) - 1)]
    truth = {"cols": cols, "x": x}
    rows = [{"model": m, "precision": p, "ms": lf.predict(f, p, truth)} for m, f in feats.items() for p in ("float", "a8w8")]
    got = lf.fit(rows, feats, ("float", "a8w8"), groups)
    assert got["x"] == pytest.approx(x, rel=1e-6) and not got["not_identified"]
    assert lf.rates(got)["float"]["rate"]["io"] == pytest.approx(1e3 / x[cols.index("inv_rate:io:float")])


def test_graph_features_count_what_the_profile_prices():
    """traffic: elementwise ops only (convs' traffic is not a feature); weights: out x in/group x kernel."""
    g = {"io": [10, 20], "ops": [["CONV_2D", "conv_kxk", 900, 900, 500, 4, 2, 1, 9],
                                 ["ADD", "add_mul", 50, 64, 192, 0, 0, 0, 0]]}
    f = lf.features(g, lf.FORMS["convs_none+elementwise_raw+traffic+weights+io"])
    assert f == pytest.approx({"ops": 4, "conv": 900e-9, "depthwise": 0.0, "elementwise": 50e-9,
                               "traffic": 192e-9, "weights": 72e-9, "io": 30e-9})


def _priced_ms(prof, g: dict, p: str) -> float:
    """A fit graph's cached work priced with the product's per-op algebra (deploy/latency/op_pricing) on a
    shipped profile at precision p: invoke + the 2 I/O ops' overhead + model I/O + every op the profile
    does not fold away (a compiler fold costs nothing of its own)."""
    from deploy.latency.op_pricing import invoke_ms, op_ms
    convs, tiled = (prof.tiling["convs"], prof.tiling["elementwise"]) if prof.tile > 1 else ("none", False)
    folded = set((prof.fusion or {}).get("kinds", ()))
    t = invoke_ms(prof, {p: 1}) + 2 * prof.op_overhead_us[p] / 1e3 + prof.io_ms(p, sum(g["io"]))
    for o in g["ops"]:
        if not (len(o) > 9 and o[9] and KINDS[o[9] - 1] in folded):
            t += op_ms(prof, o[1], p, lf.op_work(o, convs, tiled), o[4], o[5] * o[6] * o[8])
    return t


def test_the_shipped_phone_profiles_price_the_fit_graphs_as_the_fit_predicts():
    """The product's per-op algebra (deploy/latency/op_pricing.op_ms) on a shipped profile, summed over a fit
    graph's ops + invoke + the 2 I/O ops' overhead + model I/O, equals the fit's own prediction of that row
    (3-significant-figure rates in the profile: within 1 %)."""
    res = json.loads((ROOT / "bench/results/fit_published_profiles.json").read_text())
    graphs = json.loads(fit.WORK.read_text())["graphs"]
    for phone, v in res["per_phone"].items():
        prof = device_profiles.load_profile(phone)
        for row in v["fit_rows"]:
            want = row["published_ms"] * (1 + row["fitted_error"])
            assert _priced_ms(prof, graphs[row["model"]], row["precision"]) == pytest.approx(want, rel=1e-2), \
                (phone, row["model"], row["precision"])


def test_int16_rules_derive_a16w8_from_a8w8_and_float():
    """bench/published/int16_fit.derive: compute_x_k scales every compute rate's cost by k, convs_x_k only the
    MAC groups'; I/O and traffic at 2 bytes, int8 weights and overheads as a8w8; toward_float is a8w8 at
    l = 0 and float at l = 1 (weights kept int8)."""
    from bench.published import int16_fit as i16
    names = ["invoke_ms"] + [f"{k}:{p}" for p in ("float", "a8w8") for k in (
        "op_ms", "inv_rate:conv", "inv_rate:depthwise", "inv_rate:elementwise", "inv_rate:weights", "inv_rate:io",
        "inv_mem")]
    x = [0.1] + [1.0 + i for i in range(7)] + [0.5 + i / 10 for i in range(7)]
    params = {"names": names, "x": x}
    v = dict(zip(names, x))
    d = i16.derive(params, "compute_x_k", 3.0)
    assert d["inv_rate:conv:a16w8"] == pytest.approx(3 * v["inv_rate:conv:a8w8"])
    assert d["inv_rate:elementwise:a16w8"] == pytest.approx(3 * v["inv_rate:elementwise:a8w8"])
    assert d["inv_rate:io:a16w8"] == pytest.approx(2 * v["inv_rate:io:a8w8"])
    for k in ("inv_rate:weights", "op_ms", "inv_mem"):
        assert d[f"{k}:a16w8"] == v[f"{k}:a8w8"]
    d = i16.derive(params, "convs_x_k", 3.0)
    assert d["inv_rate:depthwise:a16w8"] == pytest.approx(3 * v["inv_rate:depthwise:a8w8"])
    assert d["inv_rate:elementwise:a16w8"] == v["inv_rate:elementwise:a8w8"]
    for lam, src in ((0.0, "a8w8"), (1.0, "float")):
        d = i16.derive(params, "toward_float", lam)
        for n in names[1:8]:
            k = n.rsplit(":", 1)[0]
            want = v[f"{k}:a8w8"] if k == "inv_rate:weights" else v[f"{k}:{src}"]
            assert d[f"{k}:a16w8"] == pytest.approx(want)
    assert all(d[n] == v[n] for n in names)   # a8w8 and float untouched


def test_the_a16w8_rule_is_the_cv_choice_and_the_profiles_price_it_as_the_fit(built):
    """The a16w8 rule is the lowest leave-one-model-out score on the QNN w8a16 fit rows; each shipped
    phone profile prices a fit graph at a16w8 as the TFLite fit with that rule's derived parameters does."""
    from bench.published import roofline_fit as rf
    res, profiles = built
    assert res["int16_rule"] == min(res["int16_cv"], key=lambda m: res["int16_cv"][m]["median_abs"])
    assert json.loads((ROOT / "bench/results/fit_published_profiles.json").read_text())["int16_rule"] == res["int16_rule"]
    roofline_forms = rf.ALL_FORMS
    if res["chosen_form"] not in roofline_forms:
        pytest.skip("a linear form: its a16w8 prices are checked by the linear algebra tests")
    published = json.loads(fit.PUBLISHED.read_text())
    graphs = json.loads(fit.WORK.read_text())["graphs"]
    form = roofline_forms[res["chosen_form"]]
    model = "resnet18"
    arr = {model: rf.op_arrays(graphs[model], form)}
    for phone, v in res["per_phone"].items():
        rows = fit.rows_for(published, graphs, "tflite", phone)
        arrays = {m: rf.op_arrays(graphs[m], form) for m in {r["model"] for r in rows}}
        p16 = fit.with_int16(rf.fit(rows, arrays, form, ("float", "a8w8")), True, res["int16_rule"],
                             v["qnn_a16w8"]["theta"])
        want = rf.predict(arr[model], "a16w8", p16)
        prof = device_profiles.load_profile(phone)
        assert profiles[phone]["int16"]["rule"] == res["int16_rule"]
        assert _priced_ms(prof, graphs[model], "a16w8") == pytest.approx(want, rel=2e-2), phone


def test_the_added_classifier_fit_graphs_have_torchvisions_parameter_counts():
    """ShuffleNetV2 x0.5, GoogLeNet, MNASNet 0.5 written by hand (bench/published/graphs_classifiers.py): their
    trainable parameters (BatchNorm's moving statistics are buffers in torch) = torchvision's exactly."""
    for name, want in (("shufflenet_v2", 1_366_792), ("googlenet", 6_624_904), ("mnasnet05", 2_218_512)):
        g = GRAPHS[name]
        m = g.build(g.input_hw)
        assert g.role == "fit" and sum(int(np.prod(w.shape)) for w in m.trainable_weights) == want, name


def test_the_image_to_image_fit_graphs_have_ai_hubs_parameter_counts():
    """MediaPipe-Selfie (106K) and AOT-GAN (15.2M), as AI Hub's manifests (qai-hub-models 0.65.0)."""
    for name, want in (("mediapipe_selfie", 106e3), ("aotgan", 15.2e6)):
        g = GRAPHS[name]
        assert g.role == "fit"
        assert g.build(g.input_hw).count_params() == pytest.approx(want, rel=5e-3), name


def test_the_sr_like_fit_graphs_have_their_sources_parameter_counts():
    """LaMa-Dilated (45.6M) and MiDaS small (16.6M) as AI Hub's manifests; DDRNet-23-slim as its paper
    (5.7M: Hong et al. 2021, arXiv:2101.06085 Table; AI Hub's manifest says 6.13M for the same
    DualResNet config): trainable parameters (torch's BatchNorm statistics are buffers)."""
    for name, want in (("lama_dilated", 45.6e6), ("midas", 16.6e6), ("ddrnet23_slim", 5.7e6)):
        g = GRAPHS[name]
        m = g.build(g.input_hw)
        assert g.role == "fit"
        assert sum(int(np.prod(w.shape)) for w in m.trainable_weights) == pytest.approx(want, rel=5e-3), name


def test_the_face_attribute_fit_graph_has_its_sources_parameter_counts():
    """FaceAttribNet(64, [2, 6, 3]) as qai_hub_models 0.65.0 model.py/layers.py build it: 10,822,384
    trainable parameters (38 one-alpha PReLUs). AI Hub's manifest says 12.1M: it names the older
    multitask_FR_state_dict.pt checkpoint, whose net also had the face-recognition EmbedBlock(512)
    still in layers.py (8x8 grouped conv + 1x1 + BN + PReLU: 1,311,745), and 10,822,384 + 1,311,745
    = 12,134,129 = 12.1M (its "46.3 MB" float size = 12,134,129 x 4 bytes in MiB); the current model
    (detection_only_05302025.pt, forward = the five attribute probabilities) has no EmbedBlock."""
    g = GRAPHS["face_attrib_net"]
    m = g.build(g.input_hw)
    assert g.role == "fit" and g.input_hw == (128, 128)
    ours = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    assert ours == 10_822_384
    embed = 512 // 16 * 512 * 8 * 8 + 512 * 512 + 2 * 512 + 1
    assert ours + embed == pytest.approx(12.1e6, rel=5e-3)
    assert sum(type(layer).__name__ == "PReLU" for layer in m.layers) == 38
