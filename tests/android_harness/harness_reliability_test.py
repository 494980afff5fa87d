"""Issue 19 in the harness: an explicit --device is honoured, results survive torn and corrupt
lines, and no output ever lands on an input, a directory or an existing file unasked."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness_env import AdbServer, free_port, opts, records, run

from android_harness import errors, results
from android_harness.api import Options, hosts
from android_harness.device import AdbHost

FIXTURE_LOG = Path(__file__).resolve().parent.parent / "data" / "bench_logs"


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("adb_bench:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---- an explicit --device is never answered by the desktop ----

def test_unreachable_named_adb_host_with_a_device_is_one_line(tmp_path, models, bench_binary):
    dead = f"127.0.0.1:{free_port()}"  # local, but not the local server's port: a mistyped port
    o = opts(tmp_path, models=(str(models["m16"]),), devices=("pixel",), adb_hosts=(dead,),
             benchmark_binary=str(bench_binary))
    code, _, err = run(o)
    assert code == errors.EXIT_BAD_INPUT and "unreachable" in one_line(err) and "check the port" in err
    assert not Path(o.results).exists()


def test_mistyped_local_adb_host_port_starts_no_server(tmp_path):
    port = free_port()
    h = hosts(Options(adb_hosts=(f"localhost:{port}",)))[0]
    assert not h.may_start
    with pytest.raises(errors.AdbUnavailable, match="no adb server listens"):
        h.client()
    import socket
    with pytest.raises(OSError):  # nothing was started there
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert hosts(Options(adb_hosts=("localhost",), adb_server_port=port))[0].may_start
    assert AdbHost.parse("lab:5037") == AdbHost("lab", 5037, may_start=False)


@pytest.mark.parametrize("text", ["lab:notaport", "lab:0", "lab:99999"])
def test_bad_adb_host_port_is_one_line(tmp_path, models, text):
    o = opts(tmp_path, models=(str(models["m16"]),), adb_hosts=(text,))
    code, _, err = run(o)
    assert code == errors.EXIT_BAD_INPUT and "bad --adb_host" in one_line(err)


def test_unknown_alias_missing_and_non_executable_binary(tmp_path, server_a, pixel, models, bench_binary):
    o = opts(tmp_path / "a", models=(str(models["m16"]),), devices=("no-such-phone",),
             adb_server_port=server_a.port, benchmark_binary=str(bench_binary))
    code, _, err = run(o)
    assert code == errors.EXIT_BAD_INPUT and "matches no attached phone" in one_line(err)
    assert not Path(o.results).exists()
    text = tmp_path / "benchmark_model.txt"
    text.write_text("not a program\n")
    for binary, why in ((tmp_path / "nope", "not found"), (text, "not an executable program")):
        o = opts(tmp_path / "b", models=(str(models["m16"]),), devices=(pixel.serial,),
                 adb_server_port=server_a.port, benchmark_binary=str(binary))
        code, _, err = run(o)
        assert code == errors.EXIT_BAD_INPUT and why in one_line(err)
        assert not Path(o.results).exists()


# ---- outputs: never an input, never a directory, never replaced unasked ----

def test_results_over_the_model_is_refused_even_with_overwrite(tmp_path, models):
    model = tmp_path / "m.tflite"
    model.write_bytes(models["m16"].read_bytes())
    o = opts(tmp_path, models=(str(model),), devices=("desktop",), results=str(model), overwrite=True)
    code, _, err = run(o)
    assert code == errors.EXIT_BAD_INPUT and "is also an input" in one_line(err)
    assert model.read_bytes() == models["m16"].read_bytes()


def test_results_directory_is_one_line(tmp_path, models):
    d = tmp_path / "resdir"
    d.mkdir()
    o = opts(tmp_path, models=(str(models["m16"]),), devices=("desktop",), results=str(d), overwrite=True)
    code, _, err = run(o)
    assert code == errors.EXIT_BAD_INPUT and "is a directory" in one_line(err)
    assert d.is_dir() and not list(d.iterdir())


def test_parse_log_json_rules(tmp_path):
    log = tmp_path / "ok.log"
    log.write_text(next(FIXTURE_LOG.glob("*.log")).read_text(errors="replace"))
    d = tmp_path / "dir"
    d.mkdir()
    base = dict(parse_log=str(log), overwrite=True)
    code, _, err = run(Options(**base, json_out=str(d)))
    assert code == errors.EXIT_BAD_INPUT and "is a directory" in one_line(err)
    assert not list(d.iterdir()) and not list(tmp_path.glob(".*tmp"))
    before = log.read_bytes()
    code, _, err = run(Options(**base, json_out=str(log)))
    assert code == errors.EXIT_BAD_INPUT and "is also an input" in one_line(err)
    assert log.read_bytes() == before
    out = tmp_path / "rec.json"
    out.write_text("mine")
    code, _, err = run(Options(parse_log=str(log), json_out=str(out)))
    assert code == errors.EXIT_BAD_INPUT and "exists" in one_line(err) and out.read_text() == "mine"


# ---- JSON lines that survive torn and corrupt lines ----

def test_read_records_survives_torn_corrupt_and_non_utf8_lines(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_bytes(b'{"kind": "trial", "n": 1}\n\xff\xfe garbage \x80\n[1, 2]\n'
                  b'{"kind": "trial", "n": 2}\n{"kind": "tri')
    bad: list = []
    assert [r["n"] for r in results.read_records(p, bad=bad)] == [1, 2]
    assert [n for n, _ in bad] == [2, 3, 5]
    assert [r["n"] for r in results.read_records(p)] == [1, 2]  # the public reader never raises


def test_resume_after_torn_line_measures_again_on_a_new_line(tmp_path, models):
    o = opts(tmp_path, models=(str(models["m16"]),), devices=("desktop",), trials=2)
    assert run(o)[0] == 0
    path = Path(o.results)
    lines = path.read_bytes().splitlines(keepends=True)
    trial2 = lines[1]
    # a corrupt line, then trial 2 torn: the run was killed while writing it
    path.write_bytes(lines[0] + b"\xff\xfe\n" + trial2[: len(trial2) // 2])
    code, out, err = run(Options(**{**o.__dict__, "resume": True}))
    assert code == 0, err
    assert "2 unreadable line(s) skipped (line 2, 3" in err and "results.jsonl.bad" in err
    assert "1 trial(s) run, 1 resumed" in out
    assert Path(str(path) + ".bad").read_bytes().count(b"\n") == 2
    recs = records(o)
    assert [r["trial"] for r in recs if r["kind"] == "trial"] == [0, 1]
    last = [r for r in recs if r["kind"] == "summary"][-1]
    assert last["trials_ok"] == 2 and last["complete"]
    # the new records start on their own line: every line but the torn one parses
    bad: list = []
    list(results.read_records(path, bad=bad))
    assert [n for n, _ in bad] == [2, 3]
