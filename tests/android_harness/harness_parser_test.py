"""parser.parse on genuine benchmark_model output (tests/data/bench_logs, sources in *.url)."""

from __future__ import annotations

from pathlib import Path

import pytest

from android_harness.parser import parse

LOGS = Path(__file__).parent.parent / "data" / "bench_logs"


def log(name: str) -> str:
    return (LOGS / name).read_text()


def test_every_fixture_names_its_public_source():
    logs = sorted(LOGS.glob("*.log"))
    assert len(logs) >= 8
    for p in logs:
        url = Path(str(p) + ".url").read_text()
        assert url.startswith("https://"), p.name


def test_timings_and_run_stats_xnnpack_issue_999():
    s = parse(log("xnnpack999_rpi4_int8.log"))
    assert (s.init_us, s.first_us, s.warmup_avg_us, s.inference_avg_us) == (
        18777.0, 64791.0, 57758.2, 55043.2)
    assert s.inference.count == 50 and s.inference.std_us == 1562.0
    assert (s.inference.min_us, s.inference.max_us) == (53077.0, 60727.0)
    assert s.warmup.count == 9 and s.warmup.avg_us == 57758.2
    assert (s.memory_init_mb, s.memory_overall_mb) == (8.97656, 18.7227)
    assert s.model_size_mb == 3.67827
    assert s.to_dict()["inference_std_us"] == 1562.0


def test_sr_model_on_android_peak_memory_form():
    s = parse(log("tf42507_espcn_android.log"))
    assert s.inference_avg_us == 33209.4 and s.init_us == 855.0
    assert (s.memory_init_mb, s.memory_overall_mb) == (0.0, 12.8672)


def test_logcat_prefixed_lines_and_partial_nnapi_delegation():
    s = parse(log("tf56301_nnapi_logcat.log"))
    assert s.inference_avg_us == 12167.6 and s.first_us == 32942.0
    assert s.inference.count == 75 and s.warmup.count == 40
    cov = s.coverage()
    assert cov.delegate == "NNAPI" and cov.partitions == 44 and cov.fraction is None


def test_init_profile_is_not_mistaken_for_per_op_times():
    s = parse(log("tf56301_nnapi_logcat_init_profile.log"))
    assert s.memory_overall_mb == 2.03516
    assert s.ops == () and not s.ok


def test_gpu_complete_delegation_is_full_coverage():
    s = parse(log("tf43541_gpu_android.log"))
    cov = s.coverage()
    assert cov.delegate == "GPU" and cov.fraction == 1.0 and cov.partitions == 1
    assert s.inference_avg_us == 119375.0 and s.init_us == 870557.0


def test_delegate_coverage_prefers_the_accelerator_over_xnnpack():
    s = parse(log("discuss27507_delegate_coverage.log"))
    assert [d.delegate for d in s.delegations] == [
        "TfLiteXNNPackDelegate", "TfLiteGpuDelegateV2", "TfLiteXNNPackDelegate"]
    cov = s.coverage()
    assert (cov.delegate, cov.nodes_delegated, cov.nodes_total, cov.partitions) == (
        "TfLiteGpuDelegateV2", 29, 65, 3)
    assert cov.fraction == pytest.approx(29 / 65)
    d = s.to_dict()
    assert d["coverage"]["fraction"] == pytest.approx(0.446, abs=1e-3)


def test_hexagon_coverage_forms_old_and_new():
    s = parse(log("tf56747_hexagon_coverage.log"))
    assert len(s.delegations) == 2
    assert s.delegations[1].nodes_total is None  # old "Replacing N node(s)" form
    cov = s.coverage()
    assert (cov.nodes_delegated, cov.nodes_total, cov.partitions) == (136, 139, 2)


def test_run_order_table_with_tabs_and_start_column():
    s = parse(log("tf27948_sr_run_order.log"))
    assert [o.op_type for o in s.ops] == ["DEPTHWISE_CONV_2D"] + ["CONV_2D"] * 5
    first = s.ops[0]
    assert first.outputs == ("srnetwork/Conv/Relu",) and first.node_index is None
    assert (first.first_ms, first.avg_ms, first.pct, first.times_called) == (
        538.139, 536.83, 56.668, 1)
    assert s.init_us == 253800.0 and s.inference_avg_us == 947350.0  # from the count= line


def test_run_order_table_rendered_with_spaces():
    s = parse(log("tf25021_run_order_spaces.log"))
    assert [(o.op_type, o.outputs, o.avg_ms) for o in s.ops] == [
        ("DEPTHWISE_CONV_2D", ("Relu6",), 0.719), ("FULLY_CONNECTED", ("BiasAdd_1",), 0.849)]
    assert s.inference.count == 626 and s.inference_avg_us == 1592.71


def test_summary_by_node_type():
    s = parse(log("tf53138_cpu_summary_by_type.log"))
    rows = {o.op_type: o for o in s.ops_by_type}
    assert list(rows) == ["CONV_2D", "DEPTHWISE_CONV_2D", "TFLite_Detection_PostProcess",
                          "CONCATENATION", "LOGISTIC"]
    assert (rows["CONV_2D"].count, rows["CONV_2D"].avg_ms, rows["CONV_2D"].pct) == (
        34, 266.475, 75.118)


def test_nodes_executed_is_recorded_beside_the_op_profile():
    assert parse(log("tf53138_cpu_summary_by_type.log")).nodes_executed == 64


def test_nodes_executed_of_the_init_profile_is_not_the_run_count():
    """profile_summarizer prints the count after each profile; only the regular runs' counts."""
    text = ("Profiling Info for Benchmark Initialization:\nNumber of nodes executed: 2\n"
            "Operator-wise Profiling Info for Regular Benchmark Runs:\nNumber of nodes executed: 64\n"
            "Subgraph (index: 1)\nNumber of nodes executed: 5\n")
    assert parse(text).nodes_executed == 64
    assert parse(text.split("Operator-wise")[0]).nodes_executed is None


def test_current_node_names_carry_index_and_output_tensors():
    """Newer tools name rows '[out1, out2]:node_index' (profile_summarizer.cc)."""
    text = ("Operator-wise Profiling Info for Regular Benchmark Runs:\n"
            "============================== Run Order ==============================\n"
            "\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]"
            "\t[times called]\t[Name]\n"
            "\t                 CONV_2D\t    0.120\t    0.110\t 61.111%\t 61.111%\t     0.000"
            "\t        1\t[model/body/Relu;model/body/Conv2D]:0\n"
            "\t                   SPLIT\t    0.070\t    0.070\t 38.889%\t100.000%\t     0.000"
            "\t        1\t[split:0, split:1]:1\n\n")
    s = parse(text)
    assert [(o.node_index, o.outputs) for o in s.ops] == [
        (0, ("model/body/Relu;model/body/Conv2D",)), (1, ("split:0", "split:1"))]


def test_failed_run_reports_errors_and_is_not_ok():
    s = parse("STARTING!\nERROR: Could not open '/data/local/tmp/x.tflite'.\n"
              "ERROR: Benchmarking failed.\n")
    assert not s.ok and s.errors[-1] == "Benchmarking failed."


def test_garbage_is_harmless():
    s = parse("hello\n\x00\x01 count=abc\n============================== Run Order ====\n")
    assert not s.ok and s.ops == ()


def test_nnapi_that_takes_no_node_is_zero_coverage():
    s = parse(log("tf56301_nnapi_not_executed_logcat.log"))
    cov = s.coverage()
    assert (cov.delegate, cov.nodes_delegated, cov.partitions, cov.fraction) == (
        "NNAPI", 0, 0, 0.0)
    assert s.nnapi_accelerators == ("ipuadaptor", "nnapi-reference")
    assert not s.ok  # the excerpt ends before any timing
