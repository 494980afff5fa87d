"""File helpers shared by every stage: content hashes, the output-path rule, atomic writes,
JSON-lines reading."""
from __future__ import annotations

from deploy.errors import UserInputError

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional



class OutputExistsError(UserInputError, FileExistsError):
    """An output that exists and was not to be replaced: a user error and a FileExistsError."""

def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (model files can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_outputs(outputs: Iterable[Optional[str | Path]], inputs: Iterable[Optional[str | Path]] = (), *,
                  overwrite: bool = False) -> None:
    """The one rule for every file a command writes, checked before any work is done.

    An output may never be one of the same command's inputs (compared as resolved paths, so
    `./m.tflite` and `m.tflite` are the same file) nor another of its outputs; a directory where
    a file is expected is refused; an existing file is replaced only with `overwrite`
    (side-car reports included). `None` entries are skipped. Raises UserInputError (one line).
    """
    ins = {Path(i).resolve(): Path(i) for i in inputs if i is not None}
    seen: dict[Path, Path] = {}
    for out in outputs:
        if out is None:
            continue
        out = Path(out)
        key = out.resolve()
        if key in ins:
            raise UserInputError(f"{out} is also an input of this command ({ins[key]}); writing it would "
                                 "destroy it: choose another output name")
        if key in seen:
            raise UserInputError(f"{out} would be written twice by this command (as {seen[key]} too): "
                                 "choose another output name")
        seen[key] = out
        if out.is_dir():
            raise UserInputError(f"{out} is a directory; give a file name (e.g. {out / 'out'}{out.suffix or ''})")
        if out.parent.exists() and not out.parent.is_dir():
            raise UserInputError(f"{out.parent} is a file, not a directory; {out} cannot be written there")
        if out.exists() and not overwrite:
            raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")


def atomic_write(path: str | Path, payload: bytes | str) -> None:
    """Write via a temp file + rename, so a failed run never leaves a half-written file.

    The temp file is removed on any error (including KeyboardInterrupt); a directory at `path`
    is a one-line UserInputError, never a stray temp file.
    """
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{path} is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload if isinstance(payload, bytes) else payload.encode())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def replace_marked(path: str | Path, begin: str, end: str, body: str) -> None:
    """Replace the text from marker `begin` to marker `end` (both kept: `body` starts with
    `begin` and ends with `end`) in a generated document, e.g. a README table written by bench/."""
    path = Path(path)
    text = path.read_text()
    start, stop = text.index(begin), text.index(end) + len(end)
    path.write_text(text[:start] + body + text[stop:])
