"""`SearchConfig`: every option of a policy search, sensitivity pass or Pareto front, as one value.

Why: options used to travel as 17-19 keyword arguments through `deploy.search`, `session.setup`
and the CLI glue, each layer re-checking some of them, and as mutable state on the session and
the oracle. Here they are declared once, checked once (`__post_init__`: the enums oracle, drops,
budget_on, reference and numerics, the numbers, the combinations), frozen for the run, and
written into every result (`to_json`; `from_json` reads it back). Pure (no TensorFlow).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from deploy.convert import args
from deploy.data.io_convention import DEFAULT_INPUT_HW
from deploy.errors import UserInputError, choice_error

#: how candidates are measured: simulated quantization (LiteRT judges the answer) or all on LiteRT
ORACLES = ("fast", "litert")
#: each group's a8w8 drop: simulated ("exact"), estimated, or "auto" (session.ESTIMATE_ABOVE_MACS)
DROPS = ("auto", "exact", "estimated")
#: what the budget bounds: the mean PSNR_Y over validation images, or the worst image's loss
BUDGET_ON = ("mean", "worst")
#: what the budget is measured from
REFERENCES = ("a16w8", "float")
#: what judges the budget: LiteRT's CPU kernels, the NPU target's emulated arithmetic, or auto
NUMERICS = ("auto", "cpu", "npu")
#: the fields a search reads once the session is set up (changing them needs no new session)
RUN_FIELDS = ("budget_db", "latency_budget_ms", "max_evals", "sensitivity_file", "pareto_points", "sens_cache")
#: fields that change where or how fast candidates run, or how latency is priced, not a PSNR
_NOT_MEASURED = ("workers", "cluster", "device_profile", "op_profiles", "op_profile_models", "npu_cache_dir")


def _path(value: Any) -> Optional[str]:
    return None if value is None else str(value)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """What a search measures and how (see `deploy.search` for each field's meaning).

    Frozen and checked on construction; `to_json()` is stored in every search, sensitivity and
    front JSON, `from_json()` rebuilds the config from it."""
    budget_db: Optional[float] = None
    latency_budget_ms: Optional[float] = None
    reference: str = "a16w8"
    budget_on: str = "mean"
    device_profile: Optional[str] = None
    op_profiles: Optional[tuple[str, ...]] = None
    op_profile_models: Optional[tuple[str, ...]] = None
    input_size: tuple[int, int] = DEFAULT_INPUT_HW
    val_patch: Optional[tuple[int, int]] = None
    max_evals: int = 60
    calib_dir: Optional[str] = None
    calib_images: int = 8
    val_dir: Optional[str] = None
    val_images: int = 5
    sensitivity_file: Optional[str] = None
    fuse: bool = True
    npu: Optional[str] = None
    npu_cache_dir: Optional[str] = None
    numerics: str = "auto"
    oracle: str = "fast"
    drops: str = "auto"
    workers: int = 1
    cluster: Optional[str] = None
    pareto_points: int = 12
    #: where measured sensitivity PSNRs are kept as they come (an interrupted run resumes), or None
    sens_cache: Optional[str] = None
    #: post-training quantization every candidate is built with (a deploy.convert.ptq label such
    #: as `mse+clip+cle`, or PtqOptions); stored as its label, None = min/max (the default)
    ptq: Optional[str] = None

    def __post_init__(self) -> None:
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - normalising a frozen value
        if self.budget_db is not None:
            put("budget_db", args.number("budget_db", self.budget_db, minimum=0))
        if self.latency_budget_ms is not None:
            put("latency_budget_ms", args.number("latency_budget_ms", self.latency_budget_ms, minimum=0))
        if self.budget_db is not None and self.latency_budget_ms is not None:
            raise UserInputError("pass budget_db (fastest within a PSNR loss) or latency_budget_ms (best PSNR "
                                 "within a latency), one of them", option="latency_budget_ms")
        reference = "a16w8" if self.reference == "int16x8" else self.reference  # one vocabulary
        if reference not in REFERENCES:
            raise UserInputError(f"reference must be one of {', '.join(REFERENCES)}, not '{self.reference}'",
                                 option="reference", value=self.reference)
        put("reference", reference)
        for name, allowed in (("oracle", ORACLES), ("drops", DROPS), ("budget_on", BUDGET_ON),
                              ("numerics", NUMERICS)):
            if getattr(self, name) not in allowed:
                raise choice_error(name, getattr(self, name), allowed)
        if self.drops == "estimated" and self.oracle != "fast":
            raise UserInputError("drops 'estimated' needs the simulation (oracle 'fast'); use drops 'exact'",
                                 option="drops", value=self.drops)
        if self.numerics == "npu" and not self.npu:
            raise UserInputError("--numerics npu judges on an NPU's emulated arithmetic: name the NPU with "
                                 "--npu (e.g. --npu qualcomm:SM8650)", option="numerics", value=self.numerics)
        if self.op_profiles and self.device_profile:
            raise UserInputError("pass device_profile or op_profiles, not both", option="op_profiles")
        if self.op_profiles and self.npu:
            raise UserInputError("--npu prices with a device profile (default htp_npu) and the compiler's "
                                 "placement; it does not combine with --op_profiles", option="op_profiles")
        put("input_size", args.input_size(self.input_size, allow_none=False))
        if self.val_patch is not None:
            put("val_patch", args.input_size(self.val_patch, allow_none=False))
        for name in ("calib_images", "val_images", "max_evals"):
            put(name, args.count(name, getattr(self, name)))
        put("pareto_points", args.count("pareto_points", self.pareto_points, minimum=2))
        put("workers", _workers(self.workers))
        cluster = None if self.cluster is None or str(self.cluster).strip() == "" else str(self.cluster).strip()
        if cluster is not None and self.workers != 1:
            raise UserInputError("pass workers (processes on this machine) or cluster (a Dask scheduler), "
                                 "not both", option="workers")
        put("cluster", cluster)
        for name in ("op_profiles", "op_profile_models"):
            value = getattr(self, name)
            put(name, None if value is None else tuple(str(v) for v in value))
        for name in ("calib_dir", "val_dir", "sensitivity_file", "npu_cache_dir", "sens_cache"):
            put(name, _path(getattr(self, name)))
        put("fuse", bool(self.fuse))
        put("ptq", _search_ptq(self.ptq))

    def replace(self, **changes: Any) -> "SearchConfig":
        """A new config with `changes` (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "SearchConfig":
        """The config a result JSON recorded (unknown keys refused: another version's record)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - names)
        if unknown:
            raise UserInputError(f"search config has unknown keys {', '.join(unknown)}", value=unknown)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in obj.items()})

    def measurement_json(self) -> dict[str, Any]:
        """The fields a measured PSNR depends on (run, parallelism and pricing fields left out):
        what the resumable sensitivity cache keys on."""
        return {k: v for k, v in self.to_json().items() if k not in RUN_FIELDS + _NOT_MEASURED}


def _search_ptq(value: Any) -> Optional[str]:
    """The label of PTQ options a search can share across candidates (None for the default)."""
    from deploy.convert.ptq import PtqOptions, require_recipe_free
    try:
        opts = PtqOptions.parse(value)
    except UserInputError as e:
        raise UserInputError(str(e), option="ptq", value=value) from None
    if opts.is_default:
        return None
    require_recipe_free(opts)
    return opts.label


def _workers(value: Any) -> int:
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise UserInputError(f"workers must be a whole number >= 0 (0 = one per core), not '{value}'",
                             option="workers", value=value)
    return int(value)
