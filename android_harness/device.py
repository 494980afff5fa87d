"""Phones over adb: list them across adb servers, run quoted shell commands, push files.

Why adbutils and not our own client: it speaks the adb *server* protocol in pure Python and
its wheel bundles a real adb for starting a server. A phone lab on several machines is
reached through adb's own client/server split (``--adb_host HOST:PORT``), no home-made agent.
Every call has its own timeout tier (config.QUERY_S / PUSH_S / bench), never one global value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Sequence

import adbutils
from adbutils import AdbClient
from adbutils.errors import AdbError

from android_harness import errors
from android_harness.config import PUSH_S, QUERY_S

DEFAULT_PORT = 5037
PROPS = {
    "brand": "ro.product.brand", "manufacturer": "ro.product.manufacturer",
    "model": "ro.product.model", "device": "ro.product.device",
    "soc": "ro.soc.model", "soc_manufacturer": "ro.soc.manufacturer",
    "platform": "ro.board.platform", "hardware": "ro.hardware",
    "android_version": "ro.build.version.release", "sdk": "ro.build.version.sdk",
    "abi": "ro.product.cpu.abi", "fingerprint": "ro.build.fingerprint",
}


def adb_binary() -> str:
    """$ADB, then $ADBUTILS_ADB_PATH, then PATH, then the adb inside the adbutils wheel."""
    for env in ("ADB", "ADBUTILS_ADB_PATH"):
        if os.environ.get(env):
            return os.environ[env]
    found = shutil.which("adb")
    if found:
        return found
    bundled = Path(adbutils.__file__).parent / "binaries" / "adb"
    if bundled.is_file():
        return str(bundled)
    raise errors.AdbUnavailable("no adb found: install Android platform-tools or set $ADB")


@dataclasses.dataclass(frozen=True)
class AdbHost:
    """One adb server: the local one, or another machine's (started there with ``adb -a``)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: a local server that does not answer may be started (the default local port only)
    may_start: bool = dataclasses.field(default=True, compare=False)

    @classmethod
    def parse(cls, text: str, default_port: int = DEFAULT_PORT) -> "AdbHost":
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
        try:
            number = int(port) if port else default_port
        except ValueError:
            number = -1
        if not 1 <= number <= 65535:
            raise errors.AdbUnavailable(f"bad --adb_host {text!r}: use HOST or HOST:PORT (port 1..65535)")
        return cls(host or "127.0.0.1", number)

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_local(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")

    def client(self) -> AdbClient:
        """A client for this server; starts a *local* server if none runs (never a remote)."""
        try:
            socket.create_connection((self.host, self.port), timeout=3).close()
        except OSError as e:
            if not self.is_local:
                raise errors.AdbUnavailable(
                    f"adb server {self.label} unreachable ({e.strerror or e}): on that machine "
                    f"run 'adb -a -P {self.port} nodaemon server' and check the firewall")
            if not self.may_start:
                raise errors.AdbUnavailable(
                    f"adb server {self.label} unreachable ({e.strerror or e}): no adb server listens "
                    f"on port {self.port} (check the port of --adb_host; the harness starts a local "
                    "server only on --adb_server_port)")
            self._start_local()
        return AdbClient(host=self.host, port=self.port, socket_timeout=QUERY_S)

    def _start_local(self) -> None:
        try:
            subprocess.run([adb_binary(), "-P", str(self.port), "start-server"],
                           capture_output=True, timeout=QUERY_S, check=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise errors.AdbUnavailable(
                f"could not start an adb server on port {self.port} ({e}); set $ADB") from None


@dataclasses.dataclass(frozen=True)
class ShellResult:
    returncode: int
    stdout: str
    stderr: str


@dataclasses.dataclass(frozen=True)
class DeviceRef:
    """An attached phone as `adb devices` shows it, plus what getprop said (if reachable)."""

    host: AdbHost
    serial: str
    state: str
    props: tuple[tuple[str, str], ...] = ()

    @property
    def info(self) -> dict[str, str]:
        return dict(self.props)

    @property
    def qualified(self) -> str:
        return f"{self.host.label}/{self.serial}"


class Device:
    """One phone. Every call names its own timeout; errors become one-line HarnessErrors."""

    def __init__(self, host: AdbHost, serial: str) -> None:
        self.host, self.serial = host, serial
        self._adb = host.client().device(serial)

    # ---- shell ---------------------------------------------------------------------
    def shell(self, argv: Sequence[str], *, timeout: float = QUERY_S) -> ShellResult:
        """Run argv on the phone. Each argument is shlex-quoted: no path can inject commands."""
        return self.shell_raw(shlex.join(argv), timeout=timeout)

    def shell_raw(self, cmdline: str, *, timeout: float) -> ShellResult:
        """Run an already-quoted command line (used to chain quoted argv with && / 2>&1)."""
        try:
            r = self._adb.shell2(cmdline, timeout=timeout, v2=True)
        except adbutils.AdbTimeout:
            raise errors.AdbTimeout(
                f"{self.serial}: no answer within {timeout:.0f}s to: {cmdline[:80]}") from None
        except (AdbError, EOFError, OSError) as e:
            raise self._lost(e) from None
        return ShellResult(r.returncode, r.stdout, r.stderr)

    def _lost(self, cause: Exception) -> errors.HarnessError:
        """Turn a broken call into 'device is offline/unauthorized/absent' when that's why."""
        for _ in range(6):  # the server may need a moment to notice a pulled cable
            try:
                states = {d.serial: d.state for d in self.host.client().list()}
            except (AdbError, OSError, errors.HarnessError):
                return errors.AdbUnavailable(f"adb server {self.host.label} went away ({cause})")
            state = states.get(self.serial, "absent")
            if state != "device":
                return errors.DeviceUnavailable(self.serial, state)
            time.sleep(0.5)
        return errors.DeviceUnavailable(self.serial, "unresponsive", f"adb said: {cause}")

    def getprops(self) -> dict[str, str]:
        r = self.shell(["getprop"])
        raw = dict(_parse_getprop(r.stdout))
        info = {k: raw.get(p, "") for k, p in PROPS.items()}
        info["soc"] = info["soc"] or info["platform"] or info["hardware"]
        return info

    # ---- files ---------------------------------------------------------------------
    def sha256(self, paths: Sequence[str]) -> dict[str, str]:
        """Remote sha256 of each existing path (missing files are absent from the result)."""
        r = self.shell_raw(shlex.join(["sha256sum", *paths]) + " 2>/dev/null", timeout=QUERY_S)
        out = {}
        for line in r.stdout.splitlines():
            digest, _, name = line.partition("  ")
            if len(digest) == 64:
                out[name.strip()] = digest
        return out

    def push(self, local: Path, remote: str, *, mode: int = 0o644,
             timeout: float = PUSH_S) -> None:
        """Send one file over the sync protocol with its own timeout, then verify sha256."""
        data = Path(local).read_bytes()
        try:
            conn = self._adb.open_transport(timeout=timeout)
            with conn:
                conn.send_command("sync:")
                conn.check_okay()
                target = f"{remote},{0o100000 | mode}".encode()
                conn.conn.sendall(b"SEND" + struct.pack("<I", len(target)) + target)
                for i in range(0, len(data), 64 * 1024):
                    chunk = data[i:i + 64 * 1024]
                    conn.conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                conn.conn.sendall(b"DONE" + struct.pack("<I", int(time.time())))
                status = conn.read_exact(8)
                if status[:4] != b"OKAY":
                    size = struct.unpack("<I", status[4:])[0]
                    msg = conn.read_exact(size).decode("utf-8", "replace") if size else "?"
                    raise errors.PushError(f"{self.serial}: push of {Path(local).name} refused: "
                                           f"{msg}; free space in /data/local/tmp")
                conn.conn.sendall(b"QUIT" + struct.pack("<I", 0))
        except adbutils.AdbTimeout:
            raise errors.AdbTimeout(f"{self.serial}: push of {Path(local).name} took over "
                                    f"{timeout:.0f}s") from None
        except (AdbError, EOFError, OSError) as e:
            raise self._lost(e) from None
        got = self.sha256([remote]).get(remote)
        if got is None:  # no sha256sum on this phone (Android < 8): fall back to the size
            r = self.shell(["stat", "-c", "%s", remote])
            ok = r.stdout.strip() == str(len(data))
        else:
            ok = got == hashlib.sha256(data).hexdigest()
        if not ok:
            raise errors.PushError(f"{self.serial}: {remote} does not match the local file "
                                   "after push; check free space and retry")


def _parse_getprop(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        if line.startswith("[") and "]: [" in line:
            k, _, v = line.partition("]: [")
            out.append((k[1:], v.rstrip().removesuffix("]")))
    return out


def list_devices(hosts: Sequence[AdbHost], *, with_props: bool = True,
                 unreachable: list[str] | None = None) -> list[DeviceRef]:
    """Every phone on every adb server, any state; getprop only for those in state 'device'.

    A server that does not answer raises, or, when ``unreachable`` is given, is noted there
    (one line each) so the phones on the other machines of a lab are still used.
    """
    refs = []
    for host in hosts:
        try:
            try:
                infos = host.client().list()
            except (AdbError, OSError) as e:
                raise errors.AdbUnavailable(
                    f"{host.label} did not answer like an adb server ({e}): check --adb_host "
                    "/ --adb_server_port") from None
        except errors.AdbUnavailable as e:
            if unreachable is None:
                raise
            unreachable.append(str(e))
            continue
        for info in infos:
            props: tuple[tuple[str, str], ...] = ()
            if with_props and info.state == "device":
                try:
                    props = tuple(Device(host, info.serial).getprops().items())
                except errors.HarnessError:
                    pass
            refs.append(DeviceRef(host, info.serial, info.state, props))
    return refs
