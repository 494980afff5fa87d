"""`QuantizeConfig` and `EvalConfig`: the less common options of `deploy.quantize` and
`deploy.evaluate`, as frozen values checked once.

Why: the two calls took 10 and 8 parameters; what a user changes most (the model, the policy or
precision, the input size, the photos) stays a parameter, the rest is declared here with its
default, checked on construction (same messages as before) and serialisable (`to_json`).
Pure (no TensorFlow).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Optional

from deploy.convert import args
from deploy.data.io_convention import DEFAULT_INPUT_HW, IOConvention
from deploy.errors import UserInputError

#: uniform int8: the best of the candidates (int8_route.ROUTES), or the converter's only
INT8_ROUTES = ("best", "converter")
#: what runs a converted model in `deploy.evaluate` (EvalConfig.interpreter)
INTERPRETERS = ("litert", "integer")


@dataclasses.dataclass(frozen=True)
class QuantizeConfig:
    """Options of `deploy.quantize` besides the source, policy, input size and calibration folder.

    calib_images: how many calibration photos to use.
    io_type: uniform only: `float32`, `uint8`, `int8`, `int16`; a policy carries its own.
    int8_route: for uniform int8: `best` (every candidate of deploy/evaluation/int8_route.ROUTES
        built: the converter's, per-layer all-a8w8 with min/max and with MSE-chosen activation
        ranges; the best on the validation patches kept; the report's `int8_route` says which and
        why) or `converter` (the TFLiteConverter's only).
    val_dir, val_images: the validation photos `best` measures on (default: shipped ones).
    ptq: post-training quantization options (`deploy.convert.ptq.PtqOptions` or a label such as
        `mse+clip+cle+bc`): the per-layer route with them; None = as above."""
    calib_images: int = 8
    io_type: Optional[str] = None
    int8_route: str = "best"
    val_dir: Optional[str | Path] = None
    val_images: int = 5
    ptq: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "calib_images", args.count("calib_images", self.calib_images))
        object.__setattr__(self, "val_images", args.count("val_images", self.val_images))
        if self.int8_route not in INT8_ROUTES:
            raise UserInputError(f"int8_route must be 'best' or 'converter', not '{self.int8_route}'",
                                 option="int8_route", value=self.int8_route)

    def to_json(self) -> dict[str, Any]:
        # not dataclasses.asdict: it would deep-copy a PtqOptions' learned QAT weights only to drop them
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["val_dir"] = None if self.val_dir is None else str(self.val_dir)
        out["ptq"] = None if self.ptq is None else str(getattr(self.ptq, "label", self.ptq))
        return out


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Options of `deploy.evaluate` besides the model, the photos, the precision and an NPU target.

    scale: the upscaling factor; by default the model's own (report, metadata or shapes).
    convention: the model's I/O channels and value range; by default its recorded one.
    num_threads: interpreter threads.
    input_size: for a `ModelSource`: the fixed LR size it is converted at (None: dynamic).
    interpreter: what runs a converted model: `litert` (LiteRT's interpreter) or `integer`
        (a16w8 models only: deploy/evaluation/integer_interpreter.py, LiteRT's int16 kernels'
        arithmetic on all cores, bit-identical to LiteRT and 2.7-13x faster than its
        single-threaded int16 kernels on 2 cores, bench/integer_interpreter.py; any other model
        is refused)."""
    scale: Optional[int] = None
    convention: Optional[IOConvention] = None
    num_threads: int = 2
    input_size: Optional[tuple[int, int]] = DEFAULT_INPUT_HW
    interpreter: str = "litert"

    def __post_init__(self) -> None:
        if self.interpreter not in INTERPRETERS:
            raise UserInputError(f"interpreter must be one of {', '.join(INTERPRETERS)}, not '{self.interpreter}'",
                                 option="interpreter", value=self.interpreter)
        object.__setattr__(self, "num_threads", args.count("num_threads", self.num_threads))
        if self.scale is not None:
            object.__setattr__(self, "scale", args.count("scale", self.scale))
        object.__setattr__(self, "input_size", args.input_size(self.input_size))

    def to_json(self) -> dict[str, Any]:
        return {"scale": self.scale, "convention": None if self.convention is None else dataclasses.asdict(self.convention),
                "num_threads": self.num_threads,
                "input_size": None if self.input_size is None else list(self.input_size),
                "interpreter": self.interpreter}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "EvalConfig":
        """The config `to_json` wrote (a result's `config`), checked again."""
        conv = obj.get("convention")
        size = obj.get("input_size")
        return cls(scale=obj.get("scale"), convention=None if conv is None else IOConvention(**conv),
                   num_threads=obj.get("num_threads", 2), input_size=None if size is None else tuple(size))
