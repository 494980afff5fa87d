"""Shipped device profiles: per-op-type throughput per precision for one class of target.

A profile (`deploy/profiles/<name>.json`, documented in deploy/latency/profiles/README.md) says how fast
a target runs each op class at a8w8 / a16w8 / float, what one int8<->int16 requantize costs per
element, and which precisions its accelerator takes: a precision it does not take runs on the
CPU, and every boundary between the two costs a partition switch (DESIGN.md: NNAPI, Hexagon and
GPU delegates take no int16). Every number carries its source in the file itself.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from deploy.convert.precisions import LAYER as LAYER_PRECISIONS
from deploy.latency.htp_fusion import KINDS as FUSION_KINDS
from deploy.latency.htp_tiling import CONV_TILING
from deploy.latency.op_pricing import check_roofline

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

#: TFLite op -> profile op class. Convs are priced per MAC, everything else per output element.
CONV_CLASSES = ("conv_1x1", "conv_kxk", "depthwise", "transpose_conv")
ELEMENT_CLASSES = ("add_mul", "activation", "concat", "copy", "quantize")
OP_CLASS = {
    "DEPTHWISE_CONV_2D": "depthwise", "TRANSPOSE_CONV": "transpose_conv",
    "FULLY_CONNECTED": "conv_1x1",
    "ADD": "add_mul", "SUB": "add_mul", "MUL": "add_mul", "DIV": "add_mul",
    "SQUARED_DIFFERENCE": "add_mul", "MAXIMUM": "add_mul", "MINIMUM": "add_mul",
    "RELU": "activation", "RELU6": "activation", "RELU_N1_TO_1": "activation",
    "LEAKY_RELU": "activation", "PRELU": "activation", "TANH": "activation",
    "LOGISTIC": "activation", "HARD_SWISH": "activation", "ABS": "activation",
    "CONCATENATION": "concat",
    "RESHAPE": "copy", "TRANSPOSE": "copy", "STRIDED_SLICE": "copy", "SLICE": "copy",
    "DEPTH_TO_SPACE": "copy", "SPACE_TO_DEPTH": "copy", "PAD": "copy", "PADV2": "copy",
    "SPLIT": "copy", "SPLIT_V": "copy", "GATHER": "copy", "PACK": "copy", "UNPACK": "copy",
    "RESIZE_BILINEAR": "copy", "RESIZE_NEAREST_NEIGHBOR": "copy",
    "QUANTIZE": "quantize", "DEQUANTIZE": "quantize",
}


class LatencyError(UserInputError):
    """A cost model that cannot be built (unknown profile, wrong op profile); one line for users."""


def op_class(op: str, kernel_hw: tuple[int, int] | None = None) -> str:
    """The profile class of a TFLite op; CONV_2D splits by kernel size. Unknown ops are priced
    as elementwise activations (one pass over their output)."""
    if op == "CONV_2D":
        return "conv_1x1" if kernel_hw in (None, (1, 1)) else "conv_kxk"
    return OP_CLASS.get(op, "activation")


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """One target class. `ops[class][precision]` is GMAC/s (convs) or Gelem/s (the rest)."""
    name: str
    description: str
    ops: Mapping[str, Mapping[str, Any]]
    op_overhead_us: Mapping[str, Any]      # per-op dispatch cost per precision
    invoke_overhead_us: Mapping[str, Any]  # once per inference
    requantize: Mapping[str, Any]          # {"ns_per_element": x, "source": ...}
    partition_switch: Mapping[str, Any]    # {"us": x, "source": ...}
    accelerator: Mapping[str, Any]         # {"name", "precisions": [...], "source"}
    measured: Mapping[str, Any] | None = None  # desktop: command, date, CPU
    path: str = ""
    #: NPU profiles used with a compile target (`--npu`): {"us": x, "source": ...}, the cost of one
    #: switch between an NPU partition and CPU ops in the compiled model's execution order, and
    #: {"profile": name, "source": ...}, the profile whose rates price ops the compiler left on the CPU
    npu_cpu_switch: Mapping[str, Any] | None = None
    cpu_fallback: Mapping[str, Any] | None = None
    #: {"channels": 32, "source": ...}: price work with channel dims rounded up (htp_tiling)
    channel_tile: Mapping[str, Any] | None = None
    #: {precision: Gelem/s or null, "channels": tile, "source": ...}: each elementwise (non-conv) op's
    #: activation elements read + written (htp_tiling.traffic_elements) priced at this rate on top of
    #: its work; absent: no cost
    activation_traffic: Mapping[str, Any] | None = None
    #: {precision: Gelem/s or null, "source": ...}: each conv / FC op's weight elements (htp_tiling.
    #: weight_elements) priced at this rate on top of its work; absent: no cost
    weight_traffic: Mapping[str, Any] | None = None
    #: {precision: Gelem/s or null, "source": ...}: the model's input and output elements priced at this
    #: rate, at the precision of the layer that reads the input / writes the output; absent: no cost
    io_traffic: Mapping[str, Any] | None = None
    #: {"combine": "max" | "k2", "memory_GBps": {precision: GB/s or null}, "activation_bytes": {precision: n},
    #: ["weight_bytes": {precision: n}], "channels": tile, "source": ...}: each op costs comb(compute, memory)
    #: + its overhead, memory = the bytes it moves at memory_GBps (deploy/latency/op_pricing.py); absent: linear
    roofline: Mapping[str, Any] | None = None
    #: {"kinds": [...htp_fusion.KINDS], "channels": tile, "source": ...}: ops the NPU compiler folds into a
    #: neighbour, priced at nothing (deploy/latency/htp_fusion.py); absent: every op priced
    fusion: Mapping[str, Any] | None = None

    @property
    def fuse(self) -> dict:
        """graph_ops' folding arguments for this profile: {"kinds": (...), "tile": n} (no kinds: none)."""
        f = self.fusion or {}
        return {"kinds": tuple(f.get("kinds", ())), "tile": int(f.get("channels", 32))}

    @property
    def tile(self) -> int:
        return int(self.channel_tile["channels"]) if self.channel_tile else 1

    @property
    def tiling(self) -> dict:
        """htp_tiling.tiled_work's arguments for this profile: which convs and whether elementwise
        ops are priced on channel tiles (defaults: every conv, elementwise too)."""
        t = self.channel_tile or {}
        return {"tile": self.tile, "convs": str(t.get("convs", "all")), "elementwise": bool(t.get("elementwise", True))}

    def op_ms(self, klass: str, precision: str, work: float) -> float:
        """Time of one op of `klass` doing `work` MACs (convs) or output elements (others)."""
        rate = float(self.ops[klass][precision]) * 1e9
        return 1e3 * work / rate + float(self.op_overhead_us[precision]) / 1e3

    @staticmethod
    def _rate_ms(entry: Mapping[str, Any] | None, precision: str, elements: float) -> float:
        rate = (entry or {}).get(precision)
        return 1e3 * elements / (float(rate) * 1e9) if rate else 0.0

    def traffic_ms(self, precision: str, elements: float, klass: str = "activation") -> float:
        """Memory time of one elementwise op moving `elements` activation elements (0 for convs and
        without activation_traffic)."""
        return 0.0 if klass in CONV_CLASSES else self._rate_ms(self.activation_traffic, precision, elements)

    def weights_ms(self, precision: str, elements: float) -> float:
        """Weight-fetch time of one op with `elements` weight elements (0 without weight_traffic)."""
        return self._rate_ms(self.weight_traffic, precision, elements)

    def io_ms(self, precision: str, elements: float) -> float:
        """Time to pass `elements` model input / output elements (0 without io_traffic)."""
        return self._rate_ms(self.io_traffic, precision, elements)

    @property
    def traffic_tile(self) -> int:
        return int((self.roofline or self.activation_traffic or {}).get("channels", 32))

    def switches_partition(self, a: str, b: str) -> bool:
        """Whether precisions a and b run on different processors (a delegate boundary)."""
        acc = set(self.accelerator["precisions"])
        return (a in acc) != (b in acc)

    def requantize_ms(self, elements: int) -> float:
        """One int8<->int16 requantize of `elements`, plus a partition switch if a8w8 and a16w8
        run on different processors on this target."""
        ms = elements * float(self.requantize["ns_per_element"]) / 1e6
        if self.switches_partition("a8w8", "a16w8"):
            ms += float(self.partition_switch["us"]) / 1e3
        return ms

    def to_json(self) -> dict:
        return {"name": self.name, "description": self.description, "ops": self.ops,
                "op_overhead_us": self.op_overhead_us,
                "invoke_overhead_us": self.invoke_overhead_us, "requantize": self.requantize,
                "partition_switch": self.partition_switch, "accelerator": self.accelerator,
                **({"measured": self.measured} if self.measured else {}),
                **({"npu_cpu_switch": self.npu_cpu_switch} if self.npu_cpu_switch else {}),
                **({"cpu_fallback": self.cpu_fallback} if self.cpu_fallback else {}),
                **({"channel_tile": self.channel_tile} if self.channel_tile else {}),
                **({"activation_traffic": self.activation_traffic} if self.activation_traffic else {}),
                **({"weight_traffic": self.weight_traffic} if self.weight_traffic else {}),
                **({"io_traffic": self.io_traffic} if self.io_traffic else {}),
                **({"roofline": self.roofline} if self.roofline else {}),
                **({"fusion": self.fusion} if self.fusion else {})}


#: The profile the search and `deploy.predict_latency` price on when none is named.
DEFAULT_PROFILE = "htp_npu"


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def _check(name: str, obj: Mapping[str, Any]) -> None:
    """Every entry has its source, every class and precision is present (no silent gaps)."""
    for klass in CONV_CLASSES + ELEMENT_CLASSES:
        entry = obj["ops"].get(klass)
        if entry is None:
            raise LatencyError(f"device profile '{name}' has no entry for op class '{klass}'")
        missing = [p for p in LAYER_PRECISIONS if not isinstance(entry.get(p), (int, float)) or entry[p] <= 0]
        if missing:
            raise LatencyError(f"device profile '{name}' op class '{klass}' lacks a positive "
                               f"rate for {', '.join(missing)}")
    for key in ("op_overhead_us", "invoke_overhead_us", "requantize", "partition_switch",
                "accelerator"):
        if not str(obj[key].get("source", "")).strip():
            raise LatencyError(f"device profile '{name}': '{key}' has no source")
    for key in ("npu_cpu_switch", "cpu_fallback", "channel_tile", "activation_traffic", "weight_traffic",
                "io_traffic", "fusion"):   # optional; sourced when present
        if key in obj and not str(obj[key].get("source", "")).strip():
            raise LatencyError(f"device profile '{name}': '{key}' has no source")
    if "npu_cpu_switch" in obj and not (isinstance(obj["npu_cpu_switch"].get("us"), (int, float))
                                        and obj["npu_cpu_switch"]["us"] >= 0):
        raise LatencyError(f"device profile '{name}': 'npu_cpu_switch' needs a non-negative 'us'")
    if "channel_tile" in obj and not (isinstance(obj["channel_tile"].get("channels"), int)
                                      and obj["channel_tile"]["channels"] >= 1):
        raise LatencyError(f"device profile '{name}': 'channel_tile' needs an integer 'channels' >= 1")
    if "channel_tile" in obj and (obj["channel_tile"].get("convs", "all") not in CONV_TILING
                                  or not isinstance(obj["channel_tile"].get("elementwise", True), bool)):
        raise LatencyError(f"device profile '{name}': 'channel_tile' convs must be one of {', '.join(CONV_TILING)} "
                           "and elementwise true or false")
    for key in ("activation_traffic", "weight_traffic", "io_traffic"):
        bad = [p for p in LAYER_PRECISIONS if key in obj and obj[key].get(p) is not None
               and not (isinstance(obj[key][p], (int, float)) and obj[key][p] > 0)]
        if bad:
            raise LatencyError(f"device profile '{name}': '{key}' needs a positive rate (Gelem/s) or null "
                               f"for {', '.join(bad)}")
    if "fusion" in obj and not (isinstance(obj["fusion"].get("kinds"), list)
                                and set(obj["fusion"]["kinds"]) <= set(FUSION_KINDS)
                                and isinstance(obj["fusion"].get("channels", 32), int)):
        raise LatencyError(f"device profile '{name}': 'fusion' kinds must be a list of {', '.join(FUSION_KINDS)} "
                           "(and channels an integer)")
    check_roofline(name, obj, LAYER_PRECISIONS, LatencyError)
    for klass, entry in obj["ops"].items():
        if not str(entry.get("source", "")).strip():
            raise LatencyError(f"device profile '{name}': op class '{klass}' has no source")


#: Profile fields that are JSON objects (a number or list there is a malformed profile, one line).
_OBJECT_FIELDS = ("accelerator", "ops", "op_overhead_us", "invoke_overhead_us", "requantize",
                  "partition_switch", "npu_cpu_switch", "cpu_fallback", "channel_tile", "activation_traffic",
                  "weight_traffic", "io_traffic", "roofline", "fusion")


def from_json(obj: Mapping[str, Any], path: str = "") -> DeviceProfile:
    if not isinstance(obj, Mapping):
        raise LatencyError(f"device profile {path} is not a JSON object; see deploy/latency/profiles/README.md")
    name = str(obj.get("name", Path(path).stem))
    for key in _OBJECT_FIELDS:
        if obj.get(key) is not None and not isinstance(obj[key], Mapping):
            raise LatencyError(f"device profile '{name}' ({path}): '{key}' must be an object (got "
                               f"{json.dumps(obj[key])[:40]}); see deploy/latency/profiles/README.md")
    try:
        _check(name, obj)
        return DeviceProfile(name, str(obj.get("description", "")), obj["ops"],
                             obj["op_overhead_us"], obj["invoke_overhead_us"], obj["requantize"],
                             obj["partition_switch"], obj["accelerator"], obj.get("measured"),
                             path, obj.get("npu_cpu_switch"), obj.get("cpu_fallback"),
                             obj.get("channel_tile"), obj.get("activation_traffic"),
                             obj.get("weight_traffic"), obj.get("io_traffic"), obj.get("roofline"),
                             obj.get("fusion"))
    except KeyError as e:
        raise LatencyError(f"device profile '{name}' ({path}) lacks {e}; see "
                           "deploy/latency/profiles/README.md") from None
    except (AttributeError, TypeError) as e:  # a number where an object belongs, deeper down
        raise LatencyError(f"device profile '{name}' ({path}) is malformed ({e}); compare it with "
                           "deploy/latency/profiles/htp_npu.json") from None


def load_profile(name: str | Path) -> DeviceProfile:
    """A shipped profile by name, or a profile JSON file by path."""
    path = Path(name)
    if path.suffix != ".json" or not path.is_file():
        path = PROFILE_DIR / f"{name}.json"
    if not path.is_file():
        raise LatencyError(f"unknown device profile '{name}'; known: {', '.join(known_profiles())}")
    from deploy._files import read_json  # the one reader of users' JSON (UTF-8, finite numbers)
    try:
        obj = read_json(path, "device profile")
    except UserInputError as e:
        raise LatencyError(str(e)) from None
    return from_json(obj, str(path))
