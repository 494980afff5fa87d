"""Listing and choosing phones through real adb servers (two, like two lab machines)."""

from __future__ import annotations

import io
import subprocess
import time

import adbutils
import pytest
from harness_env import BUNDLED_ADB, free_port

from android_harness import aliases, api, errors, results
from android_harness.device import AdbHost, Device, list_devices


# End-to-end through real adb servers: never let a protocol bug hang CI.
pytestmark = pytest.mark.timeout(120)

def test_list_devices_states_props_and_aliases(server_a, server_b, pixel, galaxy, locked_phone,
                                               devices_file):
    opts = api.Options(list_devices=True, devices_file=str(devices_file),
                       adb_hosts=(server_a.host.label, server_b.host.label))
    out = io.StringIO()
    assert api.run(opts, stdout=out) == 0
    lines = {line.split()[1]: line for line in out.getvalue().splitlines()[1:]}
    assert "device" in lines[pixel.serial] and "Pixel 8" in lines[pixel.serial]
    assert "Tensor G3" in lines[pixel.serial] and lines[pixel.serial].endswith(" pixel")
    assert "SM8550" in lines[galaxy.serial] and "13" in lines[galaxy.serial]
    assert lines[galaxy.serial].rstrip().endswith("s23,bench-box,galaxy")
    assert "unauthorized" in lines[locked_phone.serial]
    assert lines[pixel.serial].startswith(server_a.host.label)
    assert lines[galaxy.serial].startswith(server_b.host.label)


def test_offline_phone_is_listed_as_offline(server_a, spare_phone):
    spare_phone.stop()  # pull the cable
    deadline = time.time() + 10
    while server_a.states().get(spare_phone.serial) == "device" and time.time() < deadline:
        time.sleep(0.1)
    refs = {r.serial: r for r in list_devices([server_a.host])}
    assert refs[spare_phone.serial].state in ("offline", "connecting")
    assert refs[spare_phone.serial].props == ()  # no getprop on a phone that is not there


def test_resolve_serial_alias_and_qualified(server_a, server_b, pixel, galaxy, devices_file):
    refs = list_devices([server_a.host, server_b.host])
    table = aliases.load(devices_file)
    assert [r.serial for r in aliases.resolve(["pixel"], refs, table)] == [pixel.serial]
    assert [r.serial for r in aliases.resolve(["s23", "bench-box"], refs, table)] == [
        galaxy.serial]  # one phone, named twice: one worker
    qualified = f"{server_b.host.label}/{galaxy.serial}"
    assert aliases.resolve([qualified], refs, table)[0].host == server_b.host
    with pytest.raises(errors.DeviceNotFound, match="'iphone'.*--list_devices"):
        aliases.resolve(["iphone"], refs, table)


def test_getprop_reads_soc_and_android_version(server_a, pixel):
    info = Device(server_a.host, pixel.serial).getprops()
    assert (info["brand"], info["soc"], info["android_version"], info["sdk"]) == (
        "google", "Tensor G3", "14", "34")


def test_shell_quotes_every_argument(server_a, pixel):
    dev = Device(server_a.host, pixel.serial)
    r = dev.shell(["echo", "a b; touch /data/local/tmp/PWNED", "$(id)"])
    assert r.returncode == 0
    assert r.stdout == "a b; touch /data/local/tmp/PWNED $(id)\n"
    assert not (pixel.data_dir / "PWNED").exists()
    assert dev.shell(["sh", "-c", "exit 7"]).returncode == 7


def test_unreachable_adb_host_is_one_line():
    out, err = io.StringIO(), io.StringIO()
    code = api.run(api.Options(list_devices=True, adb_hosts=(f"127.0.0.2:{free_port()}",)),
                   stdout=out, stderr=err)
    assert code == errors.EXIT_BAD_INPUT
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0] and "adb -a" in lines[0]
    assert AdbHost.parse("lab2").port == 5037 and AdbHost.parse("lab2:6000").port == 6000


def test_double_speaks_sync_to_the_real_adb_client(tmp_path, server_a, pixel):
    """adb 36's own push/pull/shell (stat_v2 STA2/LST2, SEND/RECV, shell_v2 exit codes)."""
    seen = len(pixel.sync_requests)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 1200)  # 300 KB: several WRTE packets
    out = server_a.adb(["-s", pixel.serial, "push", str(blob), "/data/local/tmp/cli/b.bin"])
    assert "1 file pushed" in out
    assert (pixel.data_dir / "cli" / "b.bin").read_bytes() == blob.read_bytes()
    back = tmp_path / "back.bin"
    assert "1 file pulled" in server_a.adb(["-s", pixel.serial, "pull",
                                            "/data/local/tmp/cli/b.bin", str(back)])
    assert back.read_bytes() == blob.read_bytes()
    assert {"STA2", "SEND", "RECV"} <= set(pixel.sync_requests[seen:])
    r = subprocess.run([BUNDLED_ADB, "-P", str(server_a.port), "-s", pixel.serial, "shell",
                        "ls /data/local/tmp/cli; exit 5"], capture_output=True, text=True,
                       env=server_a.env, timeout=30)
    assert r.returncode == 5 and r.stdout == "b.bin\n"
    assert server_a.adb(["-s", pixel.serial, "exec-out", "getprop ro.product.model"]) == (
        "Pixel 8\n")  # exec: service, raw stdout
    phone = adbutils.AdbClient(port=server_a.port).device(pixel.serial)
    assert [f.path for f in phone.sync.list("/data/local/tmp/cli")] == ["b.bin"]  # LIST
    assert phone.sync.stat("/data/local/tmp/cli/b.bin").size == blob.stat().st_size  # STAT
    assert phone.shell("echo v1; echo err >&2") == "v1\nerr"  # shell: (v1, merged streams)


def test_one_dead_lab_machine_does_not_hide_the_others(server_a, pixel, models, tmp_path,
                                                       bench_binary):
    dead = f"127.0.0.2:{free_port()}"
    out, err = io.StringIO(), io.StringIO()
    code = api.run(api.Options(list_devices=True, adb_hosts=(server_a.host.label, dead)),
                   stdout=out, stderr=err)
    assert code == errors.EXIT_PARTIAL and pixel.serial in out.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1 and dead in err.getvalue()
    res = tmp_path / "r.jsonl"
    code = api.run(api.Options(models=(str(models["m16"]),), devices=(pixel.serial,),
                               adb_hosts=(server_a.host.label, dead), trials=1, num_runs=2,
                               warmup_runs=1, cooldown_s=0, results=str(res),
                               benchmark_binary=str(bench_binary)),
                   stdout=io.StringIO(), stderr=err)
    assert code == errors.EXIT_PARTIAL
    assert [r["kind"] for r in results.read_records(res)] == ["trial", "summary"]


def test_save_devices_pins_new_phones_and_records_soc(tmp_path, server_a, server_b, pixel,
                                                      galaxy, locked_phone):
    cfg = tmp_path / "devices.toml"
    cfg.write_text('[aliases.mine]\nserial = "%s"\n' % pixel.serial)
    o = api.Options(list_devices=True, save_devices=True, devices_file=str(cfg),
                    adb_hosts=(server_a.host.label, server_b.host.label))
    out = io.StringIO()
    assert api.run(o, stdout=out) == 0
    assert "saved aliases sm-s911b" in out.getvalue()
    table = aliases.load(cfg)
    assert table["sm-s911b"] == {"serial": galaxy.serial}      # info is not matched on
    text = cfg.read_text()
    assert 'soc = "SM8550"' in text and 'android_version = "13"' in text
    assert text.count("[aliases.") == 3  # mine, sm-s911b, its info table; not the locked one
    out = io.StringIO()
    assert api.run(o, stdout=out) == 0 and "already has an alias" in out.getvalue()
