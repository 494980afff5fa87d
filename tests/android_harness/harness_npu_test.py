"""--delegate npu: a model compiled for a phone NPU, LiteRT's dispatch libraries pushed once."""

from __future__ import annotations

import pytest
from harness_env import opts, records, run

from android_harness import errors, npu, tflite_ops
from android_harness.config import BenchConfig
from android_harness.device import list_devices
from android_harness.runner import AndroidRunner, load_model

pytestmark = pytest.mark.timeout(120)

LIBS = ("libLiteRtDispatch_Qualcomm.so", "libQnnHtp.so", "libQnnSystem.so",
        "libQnnHtpV75Stub.so", "libQnnHtpV75Skel.so")


def _compiled(src, dst):
    """What tools/npu_compile.py writes, as far as the harness looks: a DISPATCH_OP custom op."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(src.read_bytes(), 0))
    code = m.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = tflite_ops.DISPATCH_OP.encode()
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    dst.write_bytes(bytes(b.Output()))
    return dst


@pytest.fixture(scope="module")
def compiled(models, tmp_path_factory):
    return _compiled(models["m16"], tmp_path_factory.mktemp("npu") / "espcn_qualcomm_SM8650.tflite")


@pytest.fixture
def dispatch_dir(tmp_path):
    d = tmp_path / "dispatch"
    d.mkdir()
    for n in LIBS:
        (d / n).write_bytes(f"fake {n}".encode())
    return d


def test_the_reader_finds_dispatch_ops(models, compiled):
    assert tflite_ops.custom_ops(compiled.read_bytes()) == {"DISPATCH_OP"}
    assert load_model(compiled).npu_compiled and not load_model(models["m16"]).npu_compiled
    assert not tflite_ops.is_npu_compiled(models["corrupt"].read_bytes())
    assert "npu_compiled" not in load_model(compiled).to_dict()  # records (and job keys) unchanged


def test_npu_flags_are_litert_benchmark_models():
    f = BenchConfig(delegate="npu", enable_op_profiling=True).flags()
    assert "--use_npu=true" in f and not any(x.startswith("--enable_op_profiling") for x in f)


@pytest.mark.parametrize("case", ["compiled_on_cpu", "plain_on_npu", "no_dir", "no_skel",
                                  "desktop"])
def test_npu_mistakes_are_one_line_exit_2(tmp_path, models, compiled, dispatch_dir, monkeypatch,
                                          case):
    monkeypatch.delenv(npu.DISPATCH_ENV, raising=False)
    kw = dict(models=(str(compiled),), delegates=("npu",), devices=("no-such-phone",),
              npu_dispatch_dir=str(dispatch_dir))
    if case == "compiled_on_cpu":
        kw["delegates"], want = ("xnnpack", "npu"), "use --delegate npu"
    elif case == "plain_on_npu":
        kw["models"], want = (str(models["m16"]),), "tools/npu_compile.py"
    elif case == "no_dir":
        kw["npu_dispatch_dir"], want = "", "QAIRT SDK"
    elif case == "no_skel":
        (dispatch_dir / "libQnnHtpV75Skel.so").unlink()
        want = "lacks a matching libQnnHtpVNNStub.so + libQnnHtpVNNSkel.so pair"
    else:
        kw["devices"], want = ("desktop",), "--device desktop cannot run"
    code, _, err = run(opts(tmp_path, **kw))
    assert code == errors.EXIT_BAD_INPUT and want in err and err.count("\n") == 1, err
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_compiled_model_runs_with_dispatch_libs_pushed_once(tmp_path, server_a, pixel, compiled,
                                                            dispatch_dir, bench_binary,
                                                            monkeypatch):
    monkeypatch.setenv(npu.DISPATCH_ENV, str(dispatch_dir))  # the env route
    o = opts(tmp_path, models=(str(compiled),), devices=(pixel.serial,), delegates=("npu",),
             trials=1, benchmark_binary=str(bench_binary), adb_server_port=server_a.port)
    code, out, err = run(o)
    assert code == 0, err
    t = records(o, "trial")[0]
    remote = "/data/local/tmp/srdeploy/npu"
    assert t["config"]["delegate"] == "npu" and "--use_npu=true" in t["command"]
    assert f"--dispatch_library_path={remote}" in t["command"]
    assert t["command"].startswith(f"env LD_LIBRARY_PATH={remote} ADSP_LIBRARY_PATH={remote} ")
    assert t["stats"]["inference_avg_us"] > 0
    for n in LIBS:
        assert pixel.device_path(f"{remote}/{n}").read_bytes() == (dispatch_dir / n).read_bytes()
    ref = next(r for r in list_devices([server_a.host]) if r.serial == pixel.serial)
    libs = npu.dispatch_libs(dispatch_dir)
    runner = AndroidRunner(ref, bench_binary, [], npu_libs=libs)
    assert runner.prepare([load_model(compiled)]) == {"pushed": 0, "skipped": 2 + len(LIBS)}
    (dispatch_dir / "libQnnHtp.so").write_bytes(b"a newer QAIRT")
    assert runner.prepare([load_model(compiled)]) == {"pushed": 1, "skipped": 1 + len(LIBS)}
