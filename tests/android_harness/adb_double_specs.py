"""What the ADB device doubles say about themselves (getprop values, temperatures)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class DeviceSpec:
    """What the double reports about itself."""

    props: dict[str, str]
    battery_temp_c: float = 28.5
    thermal_status: int = 0
    unauthorized: bool = False


def pixel_spec(**overrides: object) -> DeviceSpec:
    props = {
        "ro.product.brand": "google", "ro.product.manufacturer": "Google",
        "ro.product.model": "Pixel 8", "ro.product.device": "shiba",
        "ro.product.name": "shiba", "ro.soc.manufacturer": "Google", "ro.soc.model": "Tensor G3",
        "ro.board.platform": "zuma", "ro.build.version.release": "14",
        "ro.build.version.sdk": "34", "ro.product.cpu.abi": "arm64-v8a",
        "ro.build.fingerprint": "google/shiba/shiba:14/AP1A/1:user/release-keys",
    }
    props.update(overrides.pop("props", {}))  # type: ignore[arg-type]
    return DeviceSpec(props=props, **overrides)  # type: ignore[arg-type]


def galaxy_spec(**overrides: object) -> DeviceSpec:
    props = {
        "ro.product.brand": "samsung", "ro.product.manufacturer": "samsung",
        "ro.product.model": "SM-S911B", "ro.product.device": "dm1q", "ro.product.name": "dm1qxxx",
        "ro.soc.manufacturer": "QTI", "ro.soc.model": "SM8550", "ro.board.platform": "kalama",
        "ro.build.version.release": "13", "ro.build.version.sdk": "33",
        "ro.product.cpu.abi": "arm64-v8a",
    }
    props.update(overrides.pop("props", {}))  # type: ignore[arg-type]
    return DeviceSpec(props=props, **overrides)  # type: ignore[arg-type]
