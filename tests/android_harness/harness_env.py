"""Helpers shared by the harness tests, the fixtures and bench/harness_overhead.py.

A plain module (not conftest.py) so it can be imported by name from anywhere without
clashing with other packages' conftest files.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import time
from pathlib import Path

import adbutils

from adb_double import AdbDouble
from android_harness import api, results
from android_harness.device import AdbHost

HERE = Path(__file__).parent
BUNDLED_ADB = str(Path(adbutils.__file__).parent / "binaries" / "adb")
FIXTURE_LOGS = HERE.parent / "data" / "bench_logs"


def free_port() -> int:
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port != 5037:
            return port


class AdbServer:
    """A real adb server (bundled binary) on its own port; killed in teardown."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.env = dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(self.port),
                        ADB_VENDOR_KEYS="")
        self.adb(["start-server"], timeout=30)
        self.host = AdbHost("127.0.0.1", self.port)

    def adb(self, args: list[str], timeout: float = 20) -> str:
        r = subprocess.run([BUNDLED_ADB, "-P", str(self.port), *args], env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        return r.stdout + r.stderr

    def states(self) -> dict[str, str]:
        return {d.serial: d.state
                for d in adbutils.AdbClient(port=self.port).list()}

    def attach(self, double: AdbDouble, state: str = "device", timeout: float = 15) -> None:
        self.adb(["connect", double.serial])
        deadline = time.time() + timeout
        while self.states().get(double.serial) != state:
            if time.time() > deadline:
                raise RuntimeError(f"{double.serial} never reached {state}: {self.states()}")
            time.sleep(0.1)

    def detach(self, double: AdbDouble) -> None:
        self.adb(["disconnect", double.serial])

    def kill(self) -> None:
        self.adb(["kill-server"])


def build_tflite(path: Path, size: int = 16, seed: int = 0) -> Path:
    """A 2-conv ESPCN-like x2 net, float TFLite (tf_keras: Keras 2, as DESIGN.md requires)."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    inp = tf_keras.Input((size, size, 3), batch_size=1)
    x = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body")(inp)
    x = tf_keras.layers.Conv2D(12, 3, padding="same", name="tail")(x)
    out = tf_keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2), name="shuffle")(x)
    model = tf_keras.Model(inp, out)
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path



FAST = dict(num_runs=3, warmup_runs=1, num_threads=1, cooldown_s=0.0)


def opts(tmp_path: Path, **kw) -> api.Options:
    """Options for a fast run whose results land under tmp_path/out."""
    base = dict(results=str(tmp_path / "out" / "results.jsonl"), trials=2, **FAST)
    base.update(kw)
    return api.Options(**base)


def run(o: api.Options) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = api.run(o, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def records(o: api.Options, kind: str | None = None) -> list[dict]:
    recs = list(results.read_records(o.results))
    return [r for r in recs if kind is None or r["kind"] == kind]
