"""File helpers shared by every stage: content hashes, atomic writes, JSON-lines reading."""
from __future__ import annotations

from deploy.errors import UserInputError

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (model files can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: str | Path, payload: bytes | str) -> None:
    """Write via a temp file + rename, so a failed run never leaves a half-written file.

    The temp file is removed on any error (including KeyboardInterrupt).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(payload) if isinstance(payload, bytes) else tmp.write_text(payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """JSON objects of a JSON-lines file, skipping blank lines; bad lines raise ValueError."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise UserInputError(f"{path}:{number}: not a JSON line ({e.msg})") from None
