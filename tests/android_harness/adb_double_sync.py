"""The ``sync:`` service of the ADB device double (SYNC.TXT, plus adb's stat_v2 STA2/LST2).

Split from adb_double.py to keep each file small; AdbDouble mixes this in.
"""

from __future__ import annotations

import stat as stat_mod
import struct
from pathlib import Path

DEVICE_ROOT = "/data/local/tmp"


class SyncService:
    """Needs ``self.device_path(str) -> Path`` and ``self.faults.refuse_push``."""

    sync_requests: list[str]   # every sync request id seen, for tests (STAT, STA2, SEND, ...)

    def _sync(self, stream: _Stream) -> None:
        while True:
            ident, length = struct.unpack("<4sI", stream.read_exact(8))
            if ident == b"QUIT":
                return
            path = stream.read_exact(length).decode("utf-8", "replace")
            self.sync_requests.append(ident.decode("ascii", "replace"))
            if ident == b"STAT":
                p = self.device_path(path)
                st = p.stat() if p.exists() else None
                stream.write(b"STAT" + struct.pack("<III", st.st_mode if st else 0,
                                                   st.st_size if st else 0,
                                                   int(st.st_mtime) if st else 0))
            elif ident in (b"STA2", b"LST2"):
                stream.write(ident + self._stat2(self.device_path(path)))
            elif ident == b"LIST":
                d = self.device_path(path)
                for child in sorted(d.iterdir()) if d.is_dir() else []:
                    st = child.stat()
                    name = child.name.encode()
                    stream.write(b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size,
                                                       int(st.st_mtime), len(name)) + name)
                stream.write(b"DONE" + b"\0" * 16)
            elif ident == b"SEND":
                self._recv_file(stream, path)
            elif ident == b"RECV":
                p = self.device_path(path)
                if not p.is_file():
                    msg = b"No such file or directory"
                    stream.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                    continue
                data = p.read_bytes()
                for i in range(0, len(data), 64 * 1024):
                    chunk = data[i:i + 64 * 1024]
                    stream.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                stream.write(b"DONE" + struct.pack("<I", 0))
            else:
                msg = f"unknown sync command {ident!r}".encode()
                stream.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                return

    @staticmethod
    def _stat2(p: Path) -> bytes:
        if not (p.exists() or p.is_symlink()):
            return struct.pack("<IQQIIIIQqqq", 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        st = p.lstat()
        return struct.pack("<IQQIIIIQqqq", 0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink,
                           2000, 2000, st.st_size, int(st.st_atime), int(st.st_mtime),
                           int(st.st_ctime))

    def _recv_file(self, stream: _Stream, spec: str) -> None:
        path, _, mode = spec.rpartition(",")
        chunks: list[bytes] = []
        while True:
            ident, n = struct.unpack("<4sI", stream.read_exact(8))
            if ident == b"DATA":
                chunks.append(stream.read_exact(n))
            elif ident == b"DONE":
                break
            else:
                raise EOFError(f"bad SEND frame {ident!r}")
        if self.faults.refuse_push:
            msg = f"couldn't create file: {path}: No space left on device".encode()
            stream.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
            return
        target = self.device_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"".join(chunks))
        target.chmod(stat_mod.S_IMODE(int(mode or "420")) or 0o644)
        stream.write(b"OKAY" + struct.pack("<I", 0))
