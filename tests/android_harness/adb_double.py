"""A device-side ADB test double: the phone end of the ADB transport protocol over TCP.

Why: the harness must be tested through the *real* adb server (the one bundled in the
adbutils wheel), not through a Python fake of our own code. The real server connects to
this double with ``adb connect 127.0.0.1:PORT`` exactly as it would to a phone over Wi-Fi.

Implements (see /usr/share/doc/adb/OVERVIEW.TXT, SERVICES.TXT, SYNC.TXT):
  * CNXN handshake at version 0x01000001 (no payload checksums), features
    ``shell_v2,cmd,stat_v2``; optional AUTH refusal, which the server shows as "unauthorized".
  * OPEN / OKAY / WRTE / CLSE streams with one-WRTE-in-flight flow control.
  * ``shell:`` (raw), ``shell,v2,...:`` (framed stdout/stderr/exit code), ``exec:``.
  * ``sync:`` with STAT / STA2 / LST2 / LIST / SEND / RECV / QUIT.
Shell commands run in /bin/sh on this machine with ``/data/local/tmp`` mapped into a temp
dir, and ``getprop`` / ``dumpsys`` answered by small scripts reading files the test controls.
Faults can be injected at run time through :class:`Faults`.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from adb_double_specs import DeviceSpec, galaxy_spec, pixel_spec  # noqa: F401 (re-export)
from adb_double_sync import DEVICE_ROOT, SyncService

A_CNXN, A_OPEN, A_OKAY = 0x4E584E43, 0x4E45504F, 0x59414B4F
A_CLSE, A_WRTE, A_AUTH = 0x45534C43, 0x45545257, 0x48545541
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
BENCH_RUNNING = {"now": 0, "max": 0}   # across all doubles: proves phones run in parallel
_BENCH_CV = threading.Condition()
FEATURES = "shell_v2,cmd,stat_v2"


@dataclasses.dataclass
class Faults:
    """Mutable switches a test flips to make the 'phone' misbehave."""

    refuse_push: bool = False           # sync SEND answers FAIL (e.g. disk full)
    drop_on_bench_call: int = 0         # drop the USB/TCP link at the Nth benchmark_model run
    hang_pattern: str = ""              # shell commands containing this never finish
    no_sha256sum: bool = False          # an old phone without toybox sha256sum
    rendezvous: int = 0                 # a run waits (<= 10 s) until this many phones run at once
    bench_calls: int = 0                # counter, read by tests


def _msg(cmd: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    return struct.pack("<6I", cmd, arg0, arg1, len(data), 0, cmd ^ 0xFFFFFFFF) + data


class _Stream:
    """One ADB stream: inbound byte buffer plus outbound flow control."""

    def __init__(self, conn: "_Connection", local_id: int, remote_id: int) -> None:
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self.cv = threading.Condition()
        self.inbox = bytearray()
        self.closed = False
        self.can_send = True

    def read_exact(self, n: int) -> bytes:
        with self.cv:
            while len(self.inbox) < n and not self.closed:
                self.cv.wait(0.5)
            if len(self.inbox) < n:
                raise EOFError("stream closed")
            out = bytes(self.inbox[:n])
            del self.inbox[:n]
            return out

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            chunk, view = bytes(view[: self.conn.max_data]), view[self.conn.max_data:]
            with self.cv:
                while not self.can_send and not self.closed:
                    self.cv.wait(0.5)
                if self.closed:
                    raise EOFError("stream closed")
                self.can_send = False
            self.conn.send(_msg(A_WRTE, self.local_id, self.remote_id, chunk))

    def close(self) -> None:
        with self.cv:
            already = self.closed
            self.closed = True
            self.cv.notify_all()
        if not already:
            self.conn.send(_msg(A_CLSE, self.local_id, self.remote_id))
        self.conn.streams.pop(self.local_id, None)


class _Connection:
    """One TCP link from the adb server (the 'USB cable')."""

    def __init__(self, double: "AdbDouble", sock: socket.socket) -> None:
        self.double, self.sock = double, sock
        self.lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.max_data = 4096
        self.alive = True

    def send(self, data: bytes) -> None:
        with self.lock:
            try:
                self.sock.sendall(data)
            except OSError:
                self.alive = False

    def drop(self) -> None:
        """Pull the cable: no CLSE, no goodbye."""
        self.alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for s in list(self.streams.values()):
            with s.cv:
                s.closed = True
                s.cv.notify_all()

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def serve(self) -> None:
        try:
            while self.alive:
                cmd, a0, a1, length, _crc, _magic = struct.unpack("<6I", self._recv_exact(24))
                data = self._recv_exact(length) if length else b""
                self._dispatch(cmd, a0, a1, data)
        except (EOFError, OSError):
            pass
        finally:
            self.drop()

    def _dispatch(self, cmd: int, a0: int, a1: int, data: bytes) -> None:
        spec = self.double.spec
        if cmd == A_CNXN:
            self.max_data = min(a1 or 4096, MAX_PAYLOAD)
            if spec.unauthorized:
                self.send(_msg(A_AUTH, 1, 0, os.urandom(20)))
                return
            self._send_banner()
        elif cmd == A_AUTH:
            if spec.unauthorized and a0 == 2:  # signature: refuse, ask again
                self.send(_msg(A_AUTH, 1, 0, os.urandom(20)))
            # a0 == 3 (public key): a real phone would show the "Allow USB debugging?" dialog.
        elif cmd == A_OPEN:
            service = data.rstrip(b"\0").decode("utf-8", "replace")
            local_id = self.next_id
            self.next_id += 1
            stream = _Stream(self, local_id, a0)
            self.streams[local_id] = stream
            self.send(_msg(A_OKAY, local_id, a0))
            threading.Thread(target=self.double._run_service, args=(stream, service),
                             daemon=True).start()
        elif cmd == A_OKAY:
            s = self.streams.get(a1)
            if s:
                with s.cv:
                    s.can_send = True
                    s.cv.notify_all()
        elif cmd == A_WRTE:
            s = self.streams.get(a1)
            if s:
                with s.cv:
                    s.inbox += data
                    s.cv.notify_all()
                self.send(_msg(A_OKAY, a1, a0))
        elif cmd == A_CLSE:
            s = self.streams.pop(a1, None)
            if s:
                with s.cv:
                    s.closed = True
                    s.cv.notify_all()

    def _send_banner(self) -> None:
        p = self.double.spec.props
        banner = (f"device::ro.product.name={p.get('ro.product.name', '')};"
                  f"ro.product.model={p.get('ro.product.model', '')};"
                  f"ro.product.device={p.get('ro.product.device', '')};features={FEATURES}")
        self.send(_msg(A_CNXN, A_VERSION, MAX_PAYLOAD, banner.encode()))


class AdbDouble(SyncService):
    """A phone on 127.0.0.1:<port>. Its /data/local/tmp lives under ``root``."""

    def __init__(self, root: Path, spec: DeviceSpec, faults: Faults | None = None) -> None:
        self.root = Path(root)
        self.spec = spec
        self.faults = faults or Faults()
        self.data_dir = self.root / DEVICE_ROOT.lstrip("/")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_system()
        self._listener: socket.socket | None = None
        self._conns: list[_Connection] = []
        self._stopped = False
        self.sync_requests: list[str] = []
        self.bench_wall_ms: list[float] = []   # phone-side wall time of each benchmark run
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> int:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(8)
        self.port = s.getsockname()[1]
        self._listener = s
        self._stopped = False
        threading.Thread(target=self._accept_loop, args=(s,), daemon=True).start()
        return self.port

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop listening and drop every link (the phone is unplugged)."""
        self._stopped = True
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        for c in list(self._conns):
            c.drop()
        self._conns.clear()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            if self._stopped:
                sock.close()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, sock)
            self._conns.append(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    # ---- device state --------------------------------------------------------------
    def set_thermal(self, battery_temp_c: float, thermal_status: int) -> None:
        self.spec.battery_temp_c, self.spec.thermal_status = battery_temp_c, thermal_status
        self._write_system()

    def _write_system(self) -> None:
        bin_dir = self.root / "system" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        state = self.root / "state"
        (state / "dumpsys").mkdir(parents=True, exist_ok=True)
        (state / "props.txt").write_text(
            "".join(f"[{k}]: [{v}]\n" for k, v in sorted(self.spec.props.items())))
        t10 = int(round(self.spec.battery_temp_c * 10))
        (state / "dumpsys" / "battery.txt").write_text(
            "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n"
            "  Wireless powered: false\n  Max charging current: 500000\n  status: 2\n"
            f"  health: 2\n  present: true\n  level: 87\n  scale: 100\n  voltage: 4213\n"
            f"  temperature: {t10}\n  technology: Li-ion\n")
        (state / "dumpsys" / "thermalservice.txt").write_text(
            "IsStatusOverride: false\nThermalEventListeners:\n\tcallbacks: 1\n"
            f"Thermal Status: {self.spec.thermal_status}\nCached temperatures:\n"
            f"\tTemperature{{mValue={self.spec.battery_temp_c}, mType=2, mName=battery, "
            f"mStatus={self.spec.thermal_status}}}\nHAL Ready: true\n")
        getprop = bin_dir / "getprop"
        getprop.write_text(
            "#!/bin/sh\nf=\"$SRD_STATE/props.txt\"\n"
            "if [ $# -eq 0 ]; then cat \"$f\"; exit 0; fi\n"
            "grep -F \"[$1]: \" \"$f\" | sed 's/^\\[[^]]*\\]: \\[\\(.*\\)\\]$/\\1/'\n")
        dumpsys = bin_dir / "dumpsys"
        dumpsys.write_text(
            "#!/bin/sh\nf=\"$SRD_STATE/dumpsys/$1.txt\"\n"
            "if [ -f \"$f\" ]; then cat \"$f\"; else echo \"Can't find service: $1\"; fi\n")
        for f in (getprop, dumpsys):
            f.chmod(0o755)

    def device_path(self, path: str) -> Path:
        """Map a phone path to this machine."""
        if path.startswith(DEVICE_ROOT):
            return self.data_dir / path[len(DEVICE_ROOT):].lstrip("/")
        return self.root / "rootfs" / path.lstrip("/")

    # ---- services ------------------------------------------------------------------
    def _run_service(self, stream: _Stream, service: str) -> None:
        try:
            if service.startswith("shell,v2") or service.startswith("shell:") \
                    or service.startswith("exec:"):
                head, _, cmd = service.partition(":")
                self._shell(stream, cmd, v2=head.startswith("shell,v2"),
                            merge=head == "shell")
            elif service.startswith("sync:"):
                self._sync(stream)
        except (EOFError, OSError):
            pass
        finally:
            stream.close()

    def _shell(self, stream: _Stream, cmd: str, *, v2: bool, merge: bool) -> None:
        is_run = "benchmark_model" in cmd and "--graph=" in cmd  # a run, not a push check
        if is_run:
            self.faults.bench_calls += 1
            if self.faults.drop_on_bench_call == self.faults.bench_calls:
                self.stop()
                return
            with _BENCH_CV:
                BENCH_RUNNING["now"] += 1
                BENCH_RUNNING["max"] = max(BENCH_RUNNING["max"], BENCH_RUNNING["now"])
                _BENCH_CV.notify_all()
                _BENCH_CV.wait_for(lambda: BENCH_RUNNING["now"] >= self.faults.rendezvous,
                                   timeout=10)
        t0 = time.perf_counter()
        try:
            self._exec(stream, cmd, v2=v2, merge=merge)
        finally:
            if is_run:
                self.bench_wall_ms.append((time.perf_counter() - t0) * 1000.0)
                with _BENCH_CV:
                    BENCH_RUNNING["now"] -= 1

    def _exec(self, stream: _Stream, cmd: str, *, v2: bool, merge: bool) -> None:
        hang = bool(self.faults.hang_pattern) and self.faults.hang_pattern in cmd
        if self.faults.no_sha256sum and cmd.startswith("sha256sum"):
            cmd = "echo '/system/bin/sh: sha256sum: inaccessible or not found' >&2; exit 127"
        mapped = cmd.replace(DEVICE_ROOT, str(self.data_dir))
        env = {"PATH": f"{self.root / 'system' / 'bin'}:/usr/bin:/bin",
               "SRD_STATE": str(self.root / "state"), "HOME": str(self.data_dir),
               "TMPDIR": str(self.data_dir), "LANG": "C.UTF-8"}
        if hang:
            mapped = "sleep 3600"
        proc = subprocess.Popen(["/bin/sh", "-c", mapped], cwd=self.root, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT if merge else subprocess.PIPE,
                                start_new_session=True)
        out: list[bytes] = []
        err: list[bytes] = []
        readers = [threading.Thread(target=lambda: out.append(proc.stdout.read()))]
        if proc.stderr is not None:
            readers.append(threading.Thread(target=lambda: err.append(proc.stderr.read())))
        for r in readers:
            r.start()
        while True:
            try:
                proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                if stream.closed:  # the host gave up (timeout): kill like adbd does
                    os.killpg(proc.pid, 9)
                    proc.wait()
                    return
        for r in readers:
            r.join()
        here = str(self.data_dir).encode()
        stdout = b"".join(out).replace(here, DEVICE_ROOT.encode())
        stderr = b"".join(err).replace(here, DEVICE_ROOT.encode())
        if v2:
            frame = lambda kind, b: struct.pack("<BI", kind, len(b)) + b  # noqa: E731
            if stdout:
                stream.write(frame(1, stdout))
            if stderr:
                stream.write(frame(2, stderr))
            stream.write(frame(3, bytes([proc.returncode & 0xFF])))
        elif stdout:
            stream.write(stdout)
