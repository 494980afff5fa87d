"""Battery temperature and thermal status from dumpsys: parse (pure) and read (one call).

Why: a phone that heats up throttles its clocks and a latency number silently drifts. Each
trial records the state before and after, and we flag throttling instead of hiding it.
"""

from __future__ import annotations

import dataclasses
import re

THROTTLE_STATUS = 1          # PowerManager.THERMAL_STATUS_LIGHT and above
HOT_BATTERY_C = 42.0
WARMING_DELTA_C = 3.0


@dataclasses.dataclass(frozen=True)
class ThermalSnapshot:
    battery_temp_c: float | None
    thermal_status: int | None


def parse_battery(text: str) -> float | None:
    m = re.search(r"^\s*temperature:\s*(-?\d+)", text, re.MULTILINE)
    return int(m.group(1)) / 10.0 if m else None


def parse_thermal_status(text: str) -> int | None:
    m = re.search(r"Thermal Status:\s*(\d+)", text)
    return int(m.group(1)) if m else None


def read(device) -> ThermalSnapshot:
    """One shell round-trip; a phone without thermalservice (Android < 10) gives None."""
    r = device.shell_raw("dumpsys battery; echo ===; dumpsys thermalservice", timeout=30.0)
    battery, _, thermal = r.stdout.partition("===")
    return ThermalSnapshot(parse_battery(battery), parse_thermal_status(thermal))


def throttled(before: ThermalSnapshot, after: ThermalSnapshot) -> bool:
    """True if the phone reported throttling or heated past the limits during a trial."""
    for s in (before, after):
        if s.thermal_status is not None and s.thermal_status >= THROTTLE_STATUS:
            return True
        if s.battery_temp_c is not None and s.battery_temp_c >= HOT_BATTERY_C:
            return True
    if before.battery_temp_c is not None and after.battery_temp_c is not None:
        return after.battery_temp_c - before.battery_temp_c >= WARMING_DELTA_C
    return False
