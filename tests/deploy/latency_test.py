"""Latency cost model: the documented sum, edges vs AEQ's requantize ops, shipped profiles, and
op profiles mapped back to Keras layers from genuine harness records."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import models
from deploy.data import calibration
from deploy.latency import device_profiles
from deploy.convert import per_layer as hybrid
from deploy.latency import cost_model
from deploy.convert import quantizer
from deploy.latency.cost_model import LatencyError
from deploy.convert.policy import Policy
from models._keras import keras

REPO = Path(__file__).resolve().parents[2]
FAKE_TOOL = REPO / "tests" / "android_harness" / "fake_benchmark_model.py"


def _tiny() -> keras.Model:
    """Convs, a skip ADD consumed across layers, a pixel shuffle: every edge kind at 16x16."""
    keras.utils.set_random_seed(0)
    x_in = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body_1")(x_in)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body_10")(x)
    y = keras.layers.Conv2D(8, 1, name="body_11")(x)
    x = keras.layers.Add(name="skip")([x, y])
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail")(x)
    x = models.layers.PixelShuffle(2, name="shuffle")(x)
    return keras.Model(x_in, x)


@pytest.fixture(scope="module")
def prep():
    return hybrid.prepare(_tiny())


@pytest.fixture(scope="module")
def calib(hr_dir):
    return calibration.calibration_set(2, (16, 16), calib_dir=hr_dir, n_images=2, patches_per_image=2)


@pytest.fixture(scope="module")
def uniform_models(prep, calib, tmp_path_factory):
    """All-a8w8 and all-a16w8 .tflite files of the tiny model (one shared calibration)."""
    d = tmp_path_factory.mktemp("uniform")
    qsv = quantizer.calibrate(prep.float_tflite, calib.patches)
    out = {}
    for p in ("a8w8", "a16w8"):
        tfl, _ = hybrid.quantize_policy(prep, Policy("custom", 2, p), calib, qsv=qsv)
        out[p] = d / f"tiny_{p}.tflite"
        out[p].write_bytes(tfl)
    return out


def _random_precisions(layers, seed):
    rng = np.random.default_rng(seed)
    return {l: str(rng.choice(["a8w8", "a16w8", "float"])) for l in layers}


def test_predict_is_exactly_the_documented_sum(prep):
    cm = cost_model.from_device_profile(prep, "htp_npu", model="custom", scale=2)
    assert set(cm.layer_ms) == set(prep.layers) and cm.source == "profile:htp_npu"
    for seed in range(5):
        p = _random_precisions(prep.layers, seed)
        expected = cm.fixed_ms + sum(cm.layer_ms[l][p[l]] for l in prep.layers) + sum(
            cm.edge_ms(e) for e in cm.edges if p[e.producer] != p[e.consumer])
        assert cm.predict_ms({**p, "input": "float"}) == pytest.approx(expected, rel=1e-12)
        rows = cm.breakdown(p)
        assert sum(r["ms"] for r in rows) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(LatencyError, match="no precision given"):
        cm.predict_ms({prep.layers[0]: "a8w8"})


@pytest.mark.parametrize("name", device_profiles.known_profiles())
def test_int8_is_faster_than_int16_on_every_shipped_profile(prep, name):
    cm = cost_model.from_device_profile(prep, name, model="custom", scale=2)
    a8 = cm.predict_ms({l: "a8w8" for l in prep.layers})
    a16 = cm.predict_ms({l: "a16w8" for l in prep.layers})
    assert 0 < a8 < a16
    # one layer alone at a16w8 costs its own difference plus its boundaries
    one = {**{l: "a8w8" for l in prep.layers}, "body_10": "a16w8"}
    assert a8 < cm.predict_ms(one)


def test_edges_are_paid_exactly_where_aeq_inserts_requantize_ops(prep, calib):
    """AEQ requantizes a tensor once per target precision, the model once per edge: the
    paid edges grouped by (producer, consumer precision) equal AEQ's requantize op count."""
    cm = cost_model.from_device_profile(prep, "desktop_xnnpack", model="custom", scale=2)
    edges = {(e.producer, e.consumer) for e in cm.edges}
    assert {("body_1", "body_10"), ("body_10", "body_11"), ("body_10", "skip"),
            ("body_11", "skip"), ("skip", "tail"), ("tail", "shuffle")} <= edges
    assert all(e.elements == 16 * 16 * 8 for e in cm.edges if e.producer.startswith("body"))
    qsv = quantizer.calibrate(prep.float_tflite, calib.patches)
    for wide in (("body_10",), ("body_1", "skip"), ("tail",)):
        policy = Policy("custom", 2, "a8w8", tuple((n, "a16w8") for n in wide))
        _, report = hybrid.quantize_policy(prep, policy, calib, qsv=qsv)
        p = policy.resolved(prep.layers)
        paid = [e for e in cm.edges if p[e.producer] != p[e.consumer]]
        assert len({(e.producer, p[e.consumer]) for e in paid}) == report["requantize_ops"], wide
        assert len(paid) >= report["requantize_ops"]
        base = cm.predict_ms({l: "a8w8" for l in prep.layers})
        assert cm.predict_ms(p) - base == pytest.approx(
            sum(cm.layer_ms[l]["a16w8"] - cm.layer_ms[l]["a8w8"] for l in wide)
            + sum(cm.edge_ms(e) for e in paid))
    # body_10 feeds body_11 and skip: 2 paid edges, 1 QUANTIZE op (the over-count we document)


def test_unknown_profile_lists_the_known_ones(prep):
    with pytest.raises(LatencyError, match="unknown device profile 'pixel9'; known: .*desktop_xnnpack"):
        cost_model.from_device_profile(prep, "pixel9", model="custom", scale=2)
    known = cost_model.known_profiles()
    assert {"desktop_xnnpack", "htp_npu", "nnapi_npu_int16_cpu"} <= set(known)


def test_every_profile_number_has_a_source():
    for name in device_profiles.known_profiles():
        obj = json.loads((device_profiles.PROFILE_DIR / f"{name}.json").read_text())
        for key in ("accelerator", "op_overhead_us", "invoke_overhead_us", "requantize",
                    "partition_switch"):
            assert obj[key]["source"].strip(), (name, key)
        for klass, entry in obj["ops"].items():
            assert entry["source"].strip(), (name, klass)
            assert set(entry) >= {"a8w8", "a16w8", "float", "unit", "source"}, (name, klass)
        cost_model.load_profile(name)   # and it loads
    desk = json.loads((device_profiles.PROFILE_DIR / "desktop_xnnpack.json").read_text())
    assert {"command", "date", "cpu"} <= set(desk["measured"])
    nnapi = cost_model.load_profile("nnapi_npu_int16_cpu")
    assert nnapi.switches_partition("a8w8", "a16w8")        # int16 falls back to the CPU
    assert not cost_model.load_profile("htp_npu").switches_partition("a8w8", "a16w8")


def test_profile_without_source_is_refused(tmp_path):
    obj = json.loads((device_profiles.PROFILE_DIR / "htp_npu.json").read_text())
    obj["ops"]["conv_kxk"]["source"] = " "
    bad = tmp_path / "mine.json"
    bad.write_text(json.dumps(obj))
    with pytest.raises(LatencyError, match="conv_kxk' has no source"):
        cost_model.load_profile(str(bad))


# ------------------------------------------------------------- op profiles (harness records)


def _phone_records(tflite: Path, out: Path, trials: int = 2) -> Path:
    """Genuine trial records: the harness's test benchmark_model (real LiteRT run, real log
    format with per-op times) parsed by the harness's own parser, one record per trial."""
    from android_harness import parse
    from android_harness.results import base_record
    from android_harness.runner import load_model
    argv = [sys.executable, str(FAKE_TOOL), f"--graph={tflite}", "--num_threads=1",
            "--num_runs=3", "--warmup_runs=1", "--enable_op_profiling=true", "--use_xnnpack=false"]
    with open(out, "w") as f:
        for i in range(trials):
            log = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
            stats = parse(log)
            assert stats.ok and stats.ops
            rec = base_record("trial", job="0" * 16, backend="android-benchmark_model",
                              device={"serial": "test"}, model=load_model(tflite).to_dict(),
                              config={"delegate": "cpu", "enable_op_profiling": True}, trial=i,
                              trials=trials, status="ok", command=" ".join(argv),
                              stats=stats.to_dict())
            f.write(json.dumps(rec, default=str) + "\n")
    return out


@pytest.fixture(scope="module")
def op_profiles(uniform_models, tmp_path_factory):
    d = tmp_path_factory.mktemp("records")
    return {p: _phone_records(path, d / f"{p}.jsonl") for p, path in uniform_models.items()}


def test_op_profile_rows_map_to_the_right_keras_layers(prep, uniform_models, op_profiles):
    convs = [o.layer for o in prep.ops if o.op == "CONV_2D"]
    for p, path in op_profiles.items():
        trials = cost_model.read_trials(path, None, p)
        m = cost_model.map_rows(prep, trials)
        rows = sorted((r for r in m.rows if r["op_type"] == "CONV_2D"), key=lambda r: r["node_index"])
        assert [r["layer"] for r in rows] == convs == ["body_1", "body_10", "body_11", "tail"]
        assert m.boundary_ms > 0 and m.quantize_ns_per_element > 0   # I/O QUANTIZE/DEQUANTIZE
    cm = cost_model.from_op_profiles(prep, op_profiles["a8w8"], op_profiles["a16w8"],
                                  a8w8_tflite_sha256=str(uniform_models["a8w8"]),
                                  a16w8_tflite_sha256=str(uniform_models["a16w8"]),
                                  model="custom", scale=2)
    assert cm.source.startswith("op_profile:")
    assert all(cm.layer_ms[l]["a8w8"] > 0 and cm.layer_ms[l]["float"] == cm.layer_ms[l]["a8w8"]
               for l in convs)
    assert all(cm.edge_ms(e) > 0 for e in cm.edges)
    p = _random_precisions(prep.layers, 0)
    assert cm.predict_ms(p) > cm.fixed_ms > 0


def test_a_layer_missing_from_an_op_profile_is_an_error_not_0_ms(prep, uniform_models, op_profiles, tmp_path):
    """Dropping one conv's rows used to price that layer at 0 ms and steer the search to it."""
    lines = []
    for line in op_profiles["a16w8"].read_text().splitlines():
        rec = json.loads(line)
        rec["stats"]["ops"] = [o for o in rec["stats"]["ops"] if "body_10" not in " ".join(o.get("outputs") or [])]
        lines.append(json.dumps(rec))
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines) + "\n")
    with pytest.raises(LatencyError, match="no rows for layer\\(s\\) body_10"):
        cost_model.from_op_profiles(prep, op_profiles["a8w8"], cut, model="custom", scale=2)


def test_op_profile_of_another_model_is_a_sha_mismatch(prep, uniform_models, op_profiles):
    import hashlib
    sha16 = hashlib.sha256(uniform_models["a16w8"].read_bytes()).hexdigest()
    with pytest.raises(LatencyError, match=r"is for model sha [0-9a-f]{8}…, not the a8w8 model "
                                           + sha16[:8] + "…; rerun adb_bench"):
        cost_model.from_op_profiles(prep, op_profiles["a8w8"], op_profiles["a16w8"],
                                 a8w8_tflite_sha256=sha16, model="custom", scale=2)


def test_desktop_records_without_per_op_times_point_to_the_desktop_profile(uniform_models, prep,
                                                                           tmp_path):
    from android_harness import BenchConfig, BenchRequest, run_benchmarks
    results = tmp_path / "desk.jsonl"
    report = run_benchmarks(BenchRequest(
        models=(uniform_models["a8w8"],), results_path=results, devices=("desktop",), trials=1,
        cooldown_s=0.0, configs=(BenchConfig(delegate="cpu", num_runs=2, warmup_runs=1,
                                             num_threads=1, enable_op_profiling=True),)))
    assert report.exit_code == 0
    with pytest.raises(LatencyError, match="no per-op times.*--device_profile desktop_xnnpack"):
        cost_model.from_op_profiles(prep, results, results, model="custom", scale=2)


def test_missing_or_empty_op_profile_is_one_clear_error(prep, tmp_path):
    with pytest.raises(LatencyError, match="does not exist"):
        cost_model.from_op_profiles(prep, tmp_path / "nope.jsonl", tmp_path / "nope.jsonl",
                                 model="custom", scale=2)
    empty = tmp_path / "e.jsonl"
    empty.write_text('{"schema_version": 1, "kind": "summary"}\n')
    with pytest.raises(LatencyError, match="no trial records"):
        cost_model.from_op_profiles(prep, empty, empty, model="custom", scale=2)
