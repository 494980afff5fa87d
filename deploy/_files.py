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
    """An output that exists and was not to be replaced: a user error and a FileExistsError.
    `file` is the output; the message says `overwrite=True` (the CLI: `--overwrite`)."""


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
    `./m.tflite` and `m.tflite` are the same file), nor lie inside an input folder (`--data`,
    `--calib_dir`, `--val_dir`: a photo there is an input, a new file there changes the data set),
    nor be another of its outputs; `overwrite` changes none of that. A directory where a file is
    expected is refused; the folder it goes to must be writable (checked now, not after the
    work); an existing file is replaced only with `overwrite` (side-car reports included).
    `None` entries are skipped. Raises UserInputError (one line).
    """
    ins = {resolved(i): Path(i) for i in inputs if i is not None}
    folders = {k: v for k, v in ins.items() if k.is_dir()}
    seen: dict[Path, Path] = {}
    for out in outputs:
        if out is None:
            continue
        out = Path(out)
        key = resolved(out)
        if key in ins:
            raise UserInputError(f"{out} is also an input of this command ({ins[key]}); writing it would "
                                 "destroy it: choose another output name")
        inside = next((v for k, v in folders.items() if key.is_relative_to(k)), None)
        if inside is not None:
            raise UserInputError(f"{out} is inside {inside}, an input folder of this command; writing there "
                                 "would change or destroy its data: choose an output outside it")
        if key in seen:
            raise UserInputError(f"{out} would be written twice by this command (as {seen[key]} too): "
                                 "choose another output name")
        seen[key] = out
        if out.is_dir():
            raise UserInputError(f"{out} is a directory; give a file name (e.g. {out / 'out'}{out.suffix or ''})")
        if out.parent.exists() and not out.parent.is_dir():
            raise UserInputError(f"{out.parent} is a file, not a directory; {out} cannot be written there")
        check_writable(out.parent)
        if out.exists() and not overwrite:
            raise OutputExistsError(f"{out} exists; pass overwrite=True to replace it", file=out)


def resolved(path: str | Path) -> Path:
    """`path` made absolute with symlinks followed; a symlink loop is a one-line UserInputError
    (Path.resolve raises RuntimeError for it)."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as e:
        raise UserInputError(f"{path} cannot be resolved ({e}); is it a symlink loop?") from None


def check_writable(folder: str | Path) -> None:
    """UserInputError unless files can be created in `folder` (or in the nearest existing folder
    above it, where it would be made): said before minutes of work, with the folder's name."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserInputError(f"{probe} is a file, not a directory; nothing can be written under it")
    if not os.access(probe if str(probe) else ".", os.W_OK | os.X_OK):
        raise UserInputError(f"cannot write in {probe} (permission denied): choose another output folder "
                             "or make it writable")


def atomic_write(path: str | Path, payload: bytes | str, *, overwrite: bool = True) -> None:
    """Write via a temp file + rename, so a failed run never leaves a half-written file.

    `overwrite=False`: the temp file is hard-linked onto `path`, so "does it exist?" and "put it
    there" are one atomic step: of two runs racing for one name, one writes and the other gets
    OutputExistsError (never a silent replace). The temp file is removed on any error (including
    KeyboardInterrupt); a directory at `path` or an unwritable folder is a one-line UserInputError.
    """
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{path} is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # read-only, no permission, a special file system: name the folder, not a temp file
        raise UserInputError(f"cannot write {path}: cannot create files in {path.parent} "
                             f"({e.strerror or e.__class__.__name__})") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload if isinstance(payload, bytes) else payload.encode())
        os.chmod(tmp, 0o644 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _publish_new(tmp: Path, path: Path) -> None:
    """Move `tmp` to `path` only if `path` does not exist, atomically."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(f"{path} exists (another run may have just written it); pass overwrite=True "
                                "to replace it", file=path) from None
    except OSError:  # a file system without hard links: reserve the name exclusively, then rename
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise OutputExistsError(f"{path} exists (another run may have just written it); pass "
                                    "overwrite=True to replace it", file=path) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


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


def replace_section(path: str | Path, name: str, table: str) -> None:
    """`replace_marked` for the usual case: `table` between `<!-- name:begin -->` and
    `<!-- name:end -->`, each marker on its own line."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    replace_marked(path, begin, end, f"{begin}\n{table}\n{end}")


def read_json(path: str | Path, what: str, hint: str = "") -> Any:
    """The one reader for every JSON a user passes (policy, sensitivity file, device profile).

    Missing files, folders, bytes that are not UTF-8, invalid JSON and non-finite numbers (NaN,
    Infinity: not JSON, and never a usable precision, drop or throughput) are each one
    UserInputError naming `what` and the file; `hint` says what to do (e.g. how to rewrite it).
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{what} {path} does not exist{tail}") from None
    except (IsADirectoryError, PermissionError, NotADirectoryError, OSError) as e:
        why = "is a directory, not a JSON file" if path.is_dir() else f"cannot be read ({e.strerror or e})"
        raise UserInputError(f"{what} {path} {why}{tail}") from None
    except UnicodeDecodeError as e:
        raise UserInputError(f"{what} {path} is not UTF-8 text (byte {e.start}): not a JSON file{tail}") from None

    def refuse(constant: str) -> Any:
        raise UserInputError(f"{what} {path} contains {constant}, which is not a number JSON allows{tail}")
    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as e:
        raise UserInputError(f"{what} {path} is not valid JSON: {e.msg} at line {e.lineno}{tail}") from None
    except RecursionError:
        raise UserInputError(f"{what} {path} is nested too deeply to be a {what}{tail}") from None


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """json.dumps that refuses NaN/Infinity (a ValueError: our bug), so no writer emits invalid JSON."""
    return json.dumps(obj, allow_nan=False, **kwargs)
