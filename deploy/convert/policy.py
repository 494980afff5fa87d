"""The per-layer precision policy: one type that travels from search to convert to report.

A policy file (`hybrid.json`, version 1):
    {"version": 1, "model": "xlsr", "scale": 3, "default": "a8w8", "io_type": "float32",
     "layers": {"head_g0": "a16w8", "tail": "a16w8", "clipped_relu": "float"}}
A searched policy may add `"ptq": "mse+clip"`: the post-training quantization it was searched
with (deploy/convert/ptq), which converting it applies again so the model is the one measured.
`default` applies to every quantizable layer the map does not name. Precisions: `a8w8` (int8
activations and weights), `a16w8` (int16 activations, int8 weights: TFLite's 16x8), `float`;
`int8` and `int16x8` are read as `a8w8` and `a16w8` (deploy/convert/precisions.py).
Weights are never int16: LiteRT has no int16-weight kernels.
Not to be confused with AI Edge Quantizer's `default_policy` (its op/config compatibility table).
"""
from __future__ import annotations

from deploy.convert import precisions
from deploy.errors import UserInputError

import dataclasses
import difflib
import json
import numbers
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

IO_TYPES = ("float32", "uint8", "int8")
VERSION = 1
#: Every key a policy file may have (`comment`: free text for people, ignored): any other (a
#: misspelt "layer") is an error, never silently ignored.
KEYS = ("version", "model", "scale", "default", "io_type", "layers", "comment", "ptq")


class PolicyError(UserInputError):
    """A policy that cannot be applied; the message names the field and what to do."""


@dataclasses.dataclass(frozen=True, repr=False)
class Policy:
    """Which precision each layer of one model runs at: a frozen value, saved as JSON.

    Attributes:
        model: the model it is for (a zoo name or a user model's file stem).
        scale: its upscaling factor (a whole number; `"3"` is refused).
        default: the precision of every layer `layers` does not name: `a8w8` (= `int8`),
            `a16w8` (= `int16x8`) or `float`.
        layers: per-layer precisions, `{"tail": "a16w8"}` or `(("tail", "a16w8"),)`; later
            entries win. Names are checked against the model when it is applied (`validate`).
        io_type: the model's input/output type: `float32`, `uint8` or `int8`.
        version: the file format version.
        ptq: the post-training quantization the policy was searched with (a deploy.convert.ptq
            label such as `mse+clip`), applied again when it is converted; None: min/max.

    Make one with `Policy.uniform(source, "a8w8").with_layers({...})`, `Policy.load(path)` or
    the search; `save(path)` / `dumps()` write it; `deploy.quantize(source, policy)` applies it.
    """
    model: str
    scale: int
    default: str = "a8w8"
    layers: tuple[tuple[str, str], ...] = ()
    io_type: str = "float32"
    version: int = VERSION
    ptq: Optional[str] = None

    def __post_init__(self):
        names = ", ".join(precisions.LAYER_NAMES)
        if isinstance(self.scale, bool) or not isinstance(self.scale, numbers.Integral) or self.scale < 1:
            raise PolicyError(f"policy scale must be a whole number >= 1, not {self.scale!r}", option="scale",
                              value=self.scale)
        object.__setattr__(self, "scale", int(self.scale))
        if isinstance(self.layers, Mapping):  # the natural form: {"tail": "a16w8"}
            object.__setattr__(self, "layers", tuple(self.layers.items()))
        elif isinstance(self.layers, (str, bytes)) or not all(
                isinstance(x, (tuple, list)) and len(x) == 2 for x in self.layers):
            raise PolicyError("policy layers must map layer names to precisions, e.g. {'tail': 'a16w8'}",
                              option="layers")
        try:
            object.__setattr__(self, "default", precisions.layer(self.default))  # normalised at the door
        except precisions.PrecisionError:
            raise PolicyError(f"policy default '{self.default}' is not a precision; use one of {names}") from None
        layers = []
        for name, p in self.layers:
            try:
                layers.append((name, precisions.layer(p)))
            except precisions.PrecisionError:
                raise PolicyError(f"policy layer '{name}': unknown precision '{p}'; use one of {names}",
                                  layer=name, value=p) from None
        object.__setattr__(self, "layers", tuple(layers))
        if self.io_type not in IO_TYPES:
            raise PolicyError(f"policy io_type '{self.io_type}' is not one of {', '.join(IO_TYPES)}")
        if self.ptq is not None:
            from deploy.convert.ptq import PtqOptions
            try:
                opts = PtqOptions.parse(self.ptq)
            except UserInputError as e:
                raise PolicyError(f"policy ptq: {e}", option="ptq", value=self.ptq) from None
            object.__setattr__(self, "ptq", None if opts.is_default else opts.label)
        if self.version > VERSION:
            raise PolicyError(f"policy version {self.version} is newer than this srdeploy "
                              f"understands ({VERSION}); upgrade srdeploy")

    @property
    def layer_map(self) -> dict[str, str]:
        return dict(self.layers)

    def precision_of(self, layer: str) -> str:
        return self.layer_map.get(layer, self.default)

    def resolved(self, layer_names: Iterable[str]) -> dict[str, str]:
        """Every layer's precision (explicit or default), in the given order."""
        return {n: self.precision_of(n) for n in layer_names}

    @classmethod
    def uniform(cls, source: Any, precision: str, *, io_type: str = "float32") -> "Policy":
        """Every layer of `source` (a `deploy.load_model` result) at one precision.

        Args:
            source: the model the policy is for (its `name` and `scale` are recorded).
            precision: `a8w8` (= `int8`), `a16w8` (= `int16x8`) or `float`.
            io_type: `float32`, `uint8` or `int8` model I/O.
        Returns:
            A policy whose default covers every layer; refine it with `with_layers`.
        Raises:
            PolicyError: an unknown precision or I/O type.
        """
        return cls(str(source.name), int(source.scale), precision, (), io_type)

    @classmethod
    def for_layers(cls, model: str, scale: int, precision: str, layer_names: Iterable[str],
                   io_type: str = "float32") -> "Policy":
        """A complete starting policy naming every layer (easy to edit by hand)."""
        return cls(model, scale, precision, tuple((n, precision) for n in layer_names), io_type)

    def with_layers(self, changes: Mapping[str, str]) -> "Policy":
        """A copy with some layers at other precisions (names are checked when it is applied)."""
        merged = {**self.layer_map, **changes}
        return dataclasses.replace(self, layers=tuple(merged.items()))

    def to_json(self) -> dict[str, Any]:
        out = {"version": self.version, "model": self.model, "scale": self.scale,
               "default": self.default, "io_type": self.io_type, "layers": self.layer_map}
        return out if self.ptq is None else {**out, "ptq": self.ptq}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the policy JSON (what `Policy.load` and `convert.py --policy` read), atomically.

        Raises:
            deploy._files.OutputExistsError: `path` exists and `overwrite` is False.
        """
        from deploy._files import atomic_write
        atomic_write(path, self.dumps(), overwrite=overwrite)
        return Path(path)

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        extra = {} if self.ptq is None else {"ptq": self.ptq}
        return brief_repr(self, model=self.model, scale=self.scale, default=self.default,
                          layers=self.layer_map, io_type=self.io_type, **extra)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "Policy":
        if not isinstance(obj, Mapping):
            raise PolicyError("a policy is a JSON object with model, scale, default and layers")
        unknown = [k for k in obj if k not in KEYS]
        if unknown:
            near = difflib.get_close_matches(str(unknown[0]), KEYS, n=1, cutoff=0.5)
            hint = f"did you mean '{near[0]}'?" if near else f"a policy has only {', '.join(KEYS)}"
            raise PolicyError(f"policy has an unknown key '{unknown[0]}' ({hint}); an unknown key would be "
                              "ignored and every layer quantized at the default")
        missing = [k for k in ("model", "scale") if k not in obj]
        if missing:
            raise PolicyError(f"policy is missing {', '.join(missing)}")
        layers = obj.get("layers", {})
        if not isinstance(layers, Mapping):
            raise PolicyError("policy 'layers' must map layer names to precisions")
        scale, version = obj["scale"], obj.get("version", VERSION)
        for key, value in (("scale", scale), ("version", version)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PolicyError(f"policy {key} {value!r} is not an integer >= 1")
        return cls(model=str(obj["model"]), scale=scale, default=str(obj.get("default", "a8w8")),
                   layers=tuple((str(k), str(v)) for k, v in layers.items()),
                   io_type=str(obj.get("io_type", "float32")), version=version,
                   ptq=None if obj.get("ptq") is None else str(obj["ptq"]))

    @classmethod
    def load(cls, path: str | Path) -> "Policy":
        """A policy JSON file; every problem with it is one PolicyError line."""
        from deploy._files import read_json
        try:
            obj = read_json(path, "policy file", "write one with tools/convert.py --write_policy a8w8")
        except UserInputError as e:
            raise PolicyError(str(e)) from None
        return cls.from_json(obj)

    def validate(self, layer_names: Optional[Iterable[str]] = None, *, model: Optional[str] = None,
                 scale: Optional[int] = None) -> None:
        """Raise PolicyError for another model/scale or a layer name the model does not have."""
        if model is not None and self.model != model:
            raise PolicyError(f"policy is for model '{self.model}', not '{model}'; write one with "
                              f"--write_policy")
        if scale is not None and self.scale != scale:
            raise PolicyError(f"policy is for x{self.scale}, not x{scale}")
        if layer_names is None:
            return
        known = list(layer_names)
        for name, _ in self.layers:
            if name not in known:
                near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(near)}?" if near else "; see --list_layers"
                raise PolicyError(f"policy names layer '{name}', which {self.model} does not have{hint}")
