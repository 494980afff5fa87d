"""Post-training quantization options for the per-layer route, beyond global min/max calibration.

`PtqOptions` is the recipe's PTQ part, recorded in the report (and the .tflite metadata) when
any option is on; the default (`PtqOptions()`: min/max ranges, nothing else) changes nothing,
so models made without options keep their bytes. Order, each step seeing the previous ones:

1. `cle`: cross-layer equalization of the float tf_keras model's weights (equalize.py),
   then the float TFLite is re-made and re-calibrated (min/max).
   `adaround`: CONV_2D weights rounded by AdaRound on the calibration patches (adaround.py).
2. `act_ranges`: each activation's range by MSE or percentile (act_ranges.py); `clip_output`
   limits the output's grid to the image's value range.
3. `bias_correction`: each conv's mean output shift in the quantized model taken out of its
   float bias, conv by conv (bias_correction.py).

`learned` (QAT, deploy/experimental/lsq.py): the trained float weights and activation ranges
(learned.py) replace steps 1-3: weights written into the float TFLite, min/max calibration for
the tensors QAT did not learn, the learned ranges for the others. Not a label word: made by QAT.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

import numpy as np

from deploy.errors import UserInputError

ACT_RANGES = ("minmax", "mse", "percentile")
#: words of the compact form: "mse+bc+cle+clip", "p99.99", "minmax"
_WORDS = {"bc": "bias_correction", "cle": "cle", "clip": "clip_output", "ar": "adaround"}


@dataclasses.dataclass(frozen=True)
class PtqOptions:
    """What the per-layer route does beyond min/max calibration (all off by default)."""
    act_ranges: str = "minmax"
    percentile: float = 99.99
    clip_output: bool = False
    bias_correction: bool = False
    cle: bool = False
    adaround: bool = False
    learned: Optional[Any] = None  # deploy.convert.ptq.learned.Learned, from QAT

    def __post_init__(self):
        if self.act_ranges not in ACT_RANGES:
            raise UserInputError(f"act_ranges must be one of {', '.join(ACT_RANGES)}, not '{self.act_ranges}'")
        if not isinstance(self.percentile, (int, float)) or not 50.0 < float(self.percentile) < 100.0:
            raise UserInputError(f"percentile must be between 50 and 100 (share kept per side), "
                                 f"not {self.percentile!r}")
        for f in ("clip_output", "bias_correction", "cle", "adaround"):
            if not isinstance(getattr(self, f), bool):
                raise UserInputError(f"{f} must be true or false, not {getattr(self, f)!r}")
        if self.learned is not None:
            from deploy.convert.ptq.learned import Learned
            if not isinstance(self.learned, Learned):
                raise UserInputError(f"learned must be a QAT result (deploy.convert.ptq.learned.Learned), "
                                     f"not {type(self.learned).__name__}")
            if dataclasses.replace(self, learned=None, percentile=99.99) != PtqOptions():
                raise UserInputError("QAT's learned weights and ranges replace the PTQ options: give one or the other")

    @property
    def is_default(self) -> bool:
        return self == PtqOptions(percentile=self.percentile) and self.act_ranges == "minmax"

    @property
    def label(self) -> str:
        """Compact name, e.g. `mse+clip+bc+cle`; parse(label) gives the options back."""
        if self.learned is not None:
            return "qat"
        head = f"p{self.percentile:g}" if self.act_ranges == "percentile" else self.act_ranges
        return "+".join([head] + [w for w, f in _WORDS.items() if getattr(self, f)])

    def to_json(self) -> dict[str, Any]:
        if self.learned is not None:
            return {"label": self.label, "qat": dict(self.learned.report)}
        d = dataclasses.asdict(self)
        d.pop("learned")
        if self.act_ranges != "percentile":
            d.pop("percentile")
        return {"label": self.label, **d}

    @classmethod
    def parse(cls, value: "PtqOptions | str | Mapping | None") -> "PtqOptions":
        """None -> default; a PtqOptions; a dict of fields; or the compact label."""
        if value is None:
            return cls()
        if isinstance(value, PtqOptions):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in dataclasses.fields(cls)}
            extra = sorted(set(value) - known - {"label"})
            if extra:
                raise UserInputError(f"unknown ptq option(s) {', '.join(extra)}; known: {', '.join(sorted(known))}")
            return cls(**{k: v for k, v in value.items() if k in known})
        if not isinstance(value, str) or not value.strip():
            raise UserInputError(f"ptq must be options, a dict or a label like 'mse+bc', not {value!r}")
        kw: dict[str, Any] = {}
        for word in value.strip().lower().split("+"):
            if word == "qat":
                raise UserInputError("'qat' is not an option to ask for by label: QAT makes it "
                                     "(convert.py --qat_steps, deploy.experimental.lsq)")
            if word in ("minmax", "mse"):
                kw["act_ranges"] = word
            elif word.startswith("p") and word[1:].replace(".", "", 1).isdigit():
                kw["act_ranges"], kw["percentile"] = "percentile", float(word[1:])
            elif word in _WORDS:
                kw[_WORDS[word]] = True
            else:
                raise UserInputError(f"unknown ptq word '{word}' in '{value}': use minmax, mse, p<percent> "
                                     f"(e.g. p99.99), {', '.join(_WORDS)} joined by '+'")
        return cls(**kw)


#: options whose result does not depend on which layers are int8 (a search can share them across
#: candidates): bias correction measures the quantized model, so each policy needs its own
RECIPE_FREE = ("act_ranges", "percentile", "clip_output", "cle", "adaround")


def apply(prep, opts: PtqOptions, patches: np.ndarray, qsv: Optional[dict], recipe: list,
          *, peak: float, calibrate: Callable[[bytes, np.ndarray], dict],
          quantize: Callable[[bytes, list, dict], bytes],
          int8_tensors: Optional[frozenset] = None) -> tuple[Any, dict, dict]:
    """(prepared model with PTQ'd float weights, calibration result, report entry).

    `calibrate`/`quantize` are quantizer.py's (passed in: this package never imports AEQ);
    `int8_tensors`: the activations on int8 grids (None: all), the only ones whose range is searched."""
    report: dict[str, Any] = opts.to_json()
    if opts.learned is not None:
        tfl = opts.learned.weights_into(prep.float_tflite)
        prep = dataclasses.replace(prep, float_tflite=tfl)
        return prep, opts.learned.ranges_into(calibrate(tfl, patches)), report
    prep, qsv = _weights(prep, opts, patches, qsv, report, calibrate)
    qsv = _ranges(prep, opts, patches, qsv, report, peak, int8_tensors)
    if opts.bias_correction:
        from deploy.convert.ptq import bias_correction
        fixed_qsv = qsv
        tfl, report["bias_correction_summary"] = bias_correction.correct(
            prep.float_tflite, patches, lambda fb: quantize(fb, recipe, fixed_qsv))
        prep = dataclasses.replace(prep, float_tflite=tfl)
    return prep, qsv, report


def require_recipe_free(opts: PtqOptions) -> None:
    """Refuse options a search cannot share across its candidates (UserInputError, option `ptq`)."""
    if opts.learned is not None or opts.bias_correction:
        raise UserInputError(f"ptq '{opts.label}': a search builds every candidate on shared grids, so only "
                             f"options that do not depend on which layers are int8 apply "
                             f"({', '.join(RECIPE_FREE)}); search without bias correction or QAT and convert "
                             "the answer with them", option="ptq", value=opts.label)


def search_grids(prep, opts: PtqOptions, patches: np.ndarray, *, peak: float,
                 calibrate: Callable[[bytes, np.ndarray], dict]) -> tuple[Any, dict, dict, dict]:
    """(prepared model, wide grids, narrow grids, report entry) for a policy search.

    A candidate policy's calibration is `narrow[t]` for its int8 activations and `wide[t]` for
    the rest: exactly what `apply(..., int8_tensors=<that policy's>)` gives, because CLE and
    AdaRound change weights whatever the policy, each activation's range is chosen alone, and
    the output's clip does not depend on its precision. Bias correction and QAT's learned values
    do depend on the policy: refused here (UserInputError)."""
    require_recipe_free(opts)
    report: dict[str, Any] = opts.to_json()
    prep, qsv = _weights(prep, opts, patches, None, report, calibrate)
    wide = _ranges(prep, dataclasses.replace(opts, act_ranges="minmax"), patches, qsv, {}, peak, None)
    narrow = _ranges(prep, opts, patches, qsv, report, peak, None)
    return prep, wide, narrow, report


def _weights(prep, opts: PtqOptions, patches, qsv, report: dict, calibrate) -> tuple[Any, dict]:
    """Steps 1: CLE (then min/max again), min/max calibration, AdaRound (ranges kept)."""
    if opts.cle:
        if prep.model is None:
            report["cle_skipped"] = "not a tf_keras model (Keras 3 / SavedModel / float TFLite source)"
        else:
            from deploy.convert.ptq import equalize
            from deploy.convert.uniform import convert_uniform
            model, report["cle_pairs"] = equalize.equalize_weights(prep.model)
            prep = dataclasses.replace(prep, model=model, float_tflite=convert_uniform(model, "float").tflite)
            qsv = None
    qsv = qsv if qsv is not None else calibrate(prep.float_tflite, patches)
    if opts.adaround:  # weights only: the activation ranges stay those just calibrated
        from deploy.convert.ptq import adaround
        tfl, report["adaround_summary"] = adaround.round_weights(prep.float_tflite, patches)
        prep = dataclasses.replace(prep, float_tflite=tfl)
    return prep, qsv


def _ranges(prep, opts: PtqOptions, patches, qsv: dict, report: dict, peak: float, only) -> dict:
    """Step 2: activation ranges by MSE/percentile (`only` those tensors; None: all), output clip."""
    if opts.act_ranges != "minmax" or opts.clip_output:
        from deploy.convert.ptq import act_ranges
        qsv, report["act_ranges_summary"] = act_ranges.choose_ranges(
            prep.float_tflite, patches, qsv, opts.act_ranges, percentile=opts.percentile,
            clip_output=peak if opts.clip_output else None, only=only)
    return qsv
