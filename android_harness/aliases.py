"""Device aliases from a small, user-editable TOML file (``--device pixel``).

Why a file: a desk of phones changes; an engineer edits one file instead of remembering
serials. Each alias is a set of case-insensitive regexes over what getprop reports
(brand, model, manufacturer, device, soc, android_version) or the serial; all must match.

    # ~/.config/srdeploy/devices.toml
    [aliases.pixel]
    brand = "google"
    [aliases.s23]
    model = "SM-S91.*"
    [aliases.lab-phone-3]
    serial = "R5CT1234ABC"
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Mapping, Sequence

from android_harness import errors

DEFAULT_ALIASES: dict[str, dict[str, str]] = {
    "pixel": {"brand": "google"},
    "galaxy": {"brand": "samsung"},
    "oneplus": {"brand": "oneplus"},
    "xiaomi": {"brand": "xiaomi|redmi|poco"},
}
MATCH_KEYS = ("serial", "brand", "model", "manufacturer", "device", "soc", "android_version")


def default_path() -> Path:
    env = os.environ.get("SRDEPLOY_DEVICES")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "srdeploy" / "devices.toml"


def load(path: str | Path | None = None) -> dict[str, dict[str, str]]:
    """The file's aliases first (they name a phone's label), then built-ins not overridden."""
    p = Path(path) if path else default_path()
    table: dict[str, dict[str, str]] = {}
    if not p.is_file():
        if path:
            raise errors.HarnessError(f"devices file {p} not found")
        return dict(DEFAULT_ALIASES)
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise errors.HarnessError(f"devices file {p} is not valid TOML: {e}") from None
    for name, rule in (data.get("aliases") or {}).items():
        rule = {k: v for k, v in rule.items() if k != "info"}  # info: recorded, not matched
        unknown = set(rule) - set(MATCH_KEYS)
        if unknown or not rule:
            raise errors.HarnessError(f"devices file {p}: alias {name!r} has keys "
                                      f"{sorted(unknown) or 'none'}; use {', '.join(MATCH_KEYS)}")
        table[name] = {k: str(v) for k, v in rule.items()}
    return {**table, **{k: v for k, v in DEFAULT_ALIASES.items() if k not in table}}


def save_discovered(refs: Sequence, path: str | Path | None = None) -> list[str]:
    """Append a serial-pinned alias for each attached phone the file does not name yet.

    Each entry also records (under ``info``, not used for matching, so an OS update does not
    break it) what getprop said: brand, model, SoC, Android version. Returns the new names.
    """
    p = Path(path) if path else default_path()
    table = load(p) if p.is_file() else dict(DEFAULT_ALIASES)
    pinned = {rule.get("serial") for rule in table.values()}
    lines, added = [], []
    for ref in refs:
        info = ref.info
        if ref.state != "device" or ref.serial in pinned or not info:
            continue
        base = re.sub(r"[^a-z0-9]+", "-", info.get("model", "phone").lower()).strip("-")
        name, n = base or "phone", 2
        while name in table or name in added:
            name, n = f"{base}-{n}", n + 1
        added.append(name)
        fields = {k: info.get(k, "") for k in ("brand", "model", "soc", "android_version",
                                                 "sdk", "abi")}
        lines.append(f"\n[aliases.{name}]\nserial = {_toml_str(ref.serial)}\n"
                     f"[aliases.{name}.info]\n"
                     + "".join(f"{k} = {_toml_str(v)}\n" for k, v in fields.items()))
    if lines:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "a", encoding="utf-8") as f:
            f.write("".join(lines))
    return added


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def matches(rule: Mapping[str, str], serial: str, info: Mapping[str, str]) -> bool:
    fields = dict(info, serial=serial)
    return all(re.fullmatch(pattern, fields.get(key, "") or "", re.IGNORECASE)
               for key, pattern in rule.items())


def aliases_for(serial: str, info: Mapping[str, str],
                table: Mapping[str, Mapping[str, str]]) -> list[str]:
    return [name for name, rule in table.items() if matches(rule, serial, info)]


def resolve(wanted: Sequence[str], refs: Sequence, table: Mapping[str, Mapping[str, str]]):
    """Map each --device value (serial, HOST:PORT/serial, or alias) to attached DeviceRefs."""
    chosen, seen = [], set()
    for want in wanted:
        hits = [r for r in refs if want in (r.serial, r.qualified)]
        if not hits and want in table:
            hits = [r for r in refs if matches(table[want], r.serial, r.info)]
        if not hits:
            known = ", ".join(sorted(table)) or "none"
            raise errors.DeviceNotFound(
                f"--device {want!r} matches no attached phone (aliases: {known}); "
                "run with --list_devices")
        for r in hits:
            if r.qualified not in seen:
                seen.add(r.qualified)
                chosen.append(r)
    return chosen
