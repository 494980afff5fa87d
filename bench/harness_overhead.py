"""Per-trial harness overhead over the raw benchmark time, measured against the ADB test double.

Why: a harness that adds 300 ms per trial is fine; one that adds noise *inside* the timed
region is not. benchmark_model times itself on the phone, so our cost is only wall time per
trial (adb round-trips, thermal reads, parsing, the fsync'ed record). This script starts a
real adb server (bundled adb, spare port) and the device double from tests/android_harness,
then prints a table. The double records how long each benchmark process ran on the "phone",
so every overhead below is measured on the same runs (robust to a busy machine).

    python bench/harness_overhead.py [--trials 10] [--num_runs 20]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "android_harness"))

from adb_double import AdbDouble, pixel_spec  # noqa: E402
from harness_env import AdbServer, build_tflite  # noqa: E402

from android_harness import api, parse, results, thermal  # noqa: E402
from android_harness.config import BenchConfig  # noqa: E402
from android_harness.device import Device, list_devices  # noqa: E402
from android_harness.runner import AndroidRunner, load_model  # noqa: E402


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--num_runs", type=int, default=20)
    args = ap.parse_args()
    n = args.trials
    tmp = Path(tempfile.mkdtemp(prefix="harness_overhead_"))
    model = build_tflite(tmp / "espcn_x2_32.tflite", 32)
    binary = tmp / "benchmark_model"
    binary.write_text(f"#!{sys.executable}\n"
                      + (REPO / "tests/android_harness/fake_benchmark_model.py").read_text())
    binary.chmod(0o755)
    server = AdbServer(tmp)
    phone = AdbDouble(tmp / "phone", pixel_spec())
    phone.start()
    version = server.adb(["version"]).splitlines()[1].split()[1]
    try:
        server.attach(phone)
        ref = next(r for r in list_devices([server.host]) if r.serial == phone.serial)
        runner = AndroidRunner(ref, binary, ["pixel"])
        m = load_model(model)
        runner.prepare([m])
        cfg = BenchConfig(delegate="cpu", num_threads=1, num_runs=args.num_runs,
                          warmup_runs=2)
        dev = Device(server.host, phone.serial)
        phone.bench_wall_ms.clear()
        via_adb = timed(lambda: runner.run_trial(m, cfg), n)
        on_phone = list(phone.bench_wall_ms)
        transport = [a - b for a, b in zip(via_adb, on_phone)]
        therm = timed(lambda: (thermal.read(dev), thermal.read(dev)), n)
        log = runner.run_trial(m, cfg).log
        parse_ms = timed(lambda: parse(log), n)
        rf = results.ResultsFile(tmp / "r.jsonl")
        rec = results.base_record("trial", stats=parse(log).to_dict())
        write_ms = timed(lambda: rf.append(rec), n)

        def session(trials: int, name: str) -> tuple[float, float]:
            """Wall time of a CLI-equivalent session, and the phone-side benchmark time in it."""
            o = api.Options(models=(str(model),), devices=(phone.serial,), delegates=("cpu",),
                            num_threads=1, num_runs=args.num_runs, warmup_runs=2,
                            trials=trials, cooldown_s=0.0, results=str(tmp / name),
                            benchmark_binary=str(binary), adb_server_port=server.port)
            phone.bench_wall_ms.clear()
            t = time.perf_counter()
            assert api.run(o, stdout=io.StringIO(), stderr=io.StringIO()) == 0
            return (time.perf_counter() - t) * 1000.0, sum(phone.bench_wall_ms)

        session(1, "warm.jsonl")
        t_n, b_n = session(n + 1, "n.jsonl")
        t_1, b_1 = session(1, "one.jsonl")
        per_trial_overhead = ((t_n - b_n) - (t_1 - b_1)) / n
    finally:
        phone.stop()
        server.kill()
    med = statistics.median
    rows = [
        ("benchmark_model process on the 'phone'", med(on_phone), max(on_phone)),
        ("same run as seen by the harness (adb shell)", med(via_adb), max(via_adb)),
        ("  -> adb transport overhead per run", med(transport), max(transport)),
        ("thermal reads (before + after)", med(therm), max(therm)),
        ("parse log (pure)", med(parse_ms), max(parse_ms)),
        ("append + fsync one JSON record", med(write_ms), max(write_ms)),
        ("harness overhead per trial (end to end)", per_trial_overhead, None),
    ]
    print(f"harness overhead: {n} trials, num_runs={args.num_runs}, 32x32 ESPCN-like x2 model, "
          f"CPU, adb {version} (bundled with adbutils), ADB device double")
    print(f"{'component':46s} {'median ms':>10s} {'max ms':>10s}")
    for name, a, b in rows:
        print(f"{name:46s} {a:10.1f} {'' if b is None else f'{b:10.1f}':>10s}")
    print(f"per trial: {per_trial_overhead:.0f} ms of wall time outside benchmark_model, which "
          f"times its own loop on the phone (its reported latency is unaffected); "
          f"{100 * per_trial_overhead / med(on_phone):.0f}% of this run's length")
    return 0


if __name__ == "__main__":
    sys.exit(main())
