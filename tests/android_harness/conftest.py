"""Fixtures: tiny .tflite models, real adb servers on spare ports, and ADB device doubles.

The adb binary is the one bundled in the adbutils wheel (CI machines have no system adb).
Servers run on non-default ports with their own HOME (their own adbkey); 5037 is never
touched. Everything session-scoped is started once: the whole directory runs in < 3 min.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from adb_double import AdbDouble, galaxy_spec, pixel_spec  # noqa: E402
from harness_env import BUNDLED_ADB, HERE, AdbServer, build_tflite  # noqa: E402


@pytest.fixture(scope="session")
def _adb_env(tmp_path_factory):
    """Make any adb that adbutils might spawn the bundled one, on a test port."""
    saved = {k: os.environ.get(k) for k in ("ADBUTILS_ADB_PATH", "ADB")}
    os.environ["ADBUTILS_ADB_PATH"] = BUNDLED_ADB
    os.environ["ADB"] = BUNDLED_ADB
    yield tmp_path_factory.mktemp("adbhome")
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def server_a(_adb_env):
    srv = AdbServer(_adb_env)
    yield srv
    srv.kill()


@pytest.fixture(scope="session")
def server_b(_adb_env):
    """A second adb server: stands in for another machine of the phone lab."""
    srv = AdbServer(_adb_env)
    yield srv
    srv.kill()


def _double(tmp_path_factory, name: str, spec) -> AdbDouble:
    d = AdbDouble(tmp_path_factory.mktemp(name), spec)
    d.start()
    return d


@pytest.fixture(scope="session")
def pixel(tmp_path_factory, server_a):
    d = _double(tmp_path_factory, "pixel", pixel_spec())
    server_a.attach(d)
    yield d
    d.stop()


@pytest.fixture(scope="session")
def galaxy(tmp_path_factory, server_b):
    d = _double(tmp_path_factory, "galaxy", galaxy_spec())
    server_b.attach(d)
    yield d
    d.stop()


@pytest.fixture(scope="session")
def locked_phone(tmp_path_factory, server_b):
    """A phone whose owner never accepted the USB-debugging prompt."""
    d = _double(tmp_path_factory, "locked", pixel_spec(
        unauthorized=True, props={"ro.product.model": "Pixel 7"}))
    server_b.attach(d, state="unauthorized")
    yield d
    d.stop()


@pytest.fixture
def spare_phone(tmp_path_factory, server_a):
    """A fresh phone per test, for fault injection; unplugged afterwards."""
    d = _double(tmp_path_factory, "spare", galaxy_spec(props={"ro.product.model": "SM-A546B"}))
    server_a.attach(d)
    yield d
    d.stop()
    server_a.detach(d)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    m16 = build_tflite(d / "espcn_x2_16.tflite", 16, seed=1)
    m32 = build_tflite(d / "espcn_x2_32.tflite", 32, seed=2)
    evil = d / "sr net; touch INJECTED; x.tflite"
    shutil.copy(m16, evil)
    corrupt = d / "corrupt.tflite"
    corrupt.write_bytes(b"\x00" * 4 + b"TFL3" + b"\xff" * 64)  # right magic, broken body
    garbage = d / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer at all")
    return {"m16": m16, "m32": m32, "evil": evil, "corrupt": corrupt, "garbage": garbage}


@pytest.fixture(scope="session")
def bench_binary(tmp_path_factory) -> Path:
    """The phone's 'benchmark_model': our stand-in script with this venv's python."""
    p = tmp_path_factory.mktemp("bin") / "benchmark_model"
    src = (HERE / "fake_benchmark_model.py").read_text()
    p.write_text(f"#!{sys.executable}\n{src}")
    p.chmod(0o755)
    return p


@pytest.fixture(scope="session")
def devices_file(tmp_path_factory, galaxy) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "devices.toml"
    p.write_text('[aliases.pixel]\nbrand = "google"\nmodel = "Pixel 8"\n\n'
                 '[aliases.s23]\nmodel = "SM-S91.*"\n\n'
                 f'[aliases.bench-box]\nserial = "{galaxy.serial}"\n')
    return p
