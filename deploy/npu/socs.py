"""The NPU targets we know: SoC name -> vendor, QNN SoC id and HTP architecture.

The compiler itself accepts these names; emulation needs the matching `htp_arch` and QNN
`soc_model` id (a v81 context binary does not run under arch 75). Every row was read back from the
Qualcomm compiler's own log ("Initializing QNN backend for SoC model: N", "overwrite it to A") with
QAIRT 2.51 (onnxruntime-qnn 2.7.0); tests check a few rows the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from deploy.errors import UserInputError


class UnknownSocError(UserInputError):
    """A SoC name the NPU tooling does not know."""


@dataclass(frozen=True)
class Soc:
    name: str        # what the compiler takes, e.g. "SM8650"
    vendor: str      # "qualcomm" (the only vendor whose compiler runs offline)
    qnn_soc_id: int  # QNN's numeric SoC model (onnxruntime-qnn `soc_model`)
    htp_arch: int    # Hexagon HTP architecture version (onnxruntime-qnn `htp_arch`)
    product: str     # marketing name where certain, else the device class

    @property
    def target(self) -> str:
        return f"{self.vendor}:{self.name}"


_ROWS = [
    ("SM8350", 30, 68, "Snapdragon 888"),
    ("SM8450", 36, 69, "Snapdragon 8 Gen 1"),
    ("SM8475", 42, 69, "Snapdragon 8+ Gen 1"),
    ("SM8550", 43, 73, "Snapdragon 8 Gen 2"),
    ("SM8650", 57, 75, "Snapdragon 8 Gen 3"),
    ("SM8750", 69, 79, "Snapdragon 8 Elite"),
    ("SM8845", 97, 81, "phone"),
    ("SM8850", 87, 81, "Snapdragon 8 Elite Gen 5"),
    ("SM8635", 68, 73, "Snapdragon 8s Gen 3"),
    ("SM8735", 85, 73, "phone"),
    ("SM7550", 64, 73, "Snapdragon 7 Gen 3"),
    ("SM7675", 70, 73, "Snapdragon 7+ Gen 3"),
    ("QCS8300", 82, 75, "IoT"),
    ("QCS9100", 77, 73, "IoT"),
    ("SA8255", 52, 73, "automotive"),
    ("SA8295", 39, 68, "automotive"),
    ("SA8775", 52, 73, "automotive"),
]
SOCS: dict[str, Soc] = {name: Soc(name, "qualcomm", sid, arch, product) for name, sid, arch, product in _ROWS}
VENDORS = ("qualcomm",)


def known_socs() -> list[str]:
    return list(SOCS)


def resolve_soc(name: str) -> Soc:
    """`SM8650`, `sm8650` or `qualcomm:SM8650` -> Soc; anything else raises with the known names."""
    text = name.strip()
    vendor, _, model = text.rpartition(":")
    if vendor and vendor.lower() not in VENDORS:
        raise UnknownSocError(f"unknown NPU vendor {vendor!r} in {name!r}: only qualcomm compiles offline "
                              f"(MediaTek and Google Tensor compilers need vendor SDKs)")
    soc = SOCS.get(model.upper())
    if soc is None:
        raise UnknownSocError(f"unknown SoC {name!r}; known: {', '.join(SOCS)}")
    return soc


def list_socs_text() -> str:
    """The `--list_socs` table."""
    lines = [f"{'target':<18} {'HTP':>4} {'QNN id':>6}  product"]
    lines += [f"{s.target:<18} v{s.htp_arch:<3} {s.qnn_soc_id:>6}  {s.product}" for s in SOCS.values()]
    return "\n".join(lines)
