"""The post-training quantization flags `convert.py` and `search_policy.py` share (deploy/convert/ptq).

Why one module: the same words must mean the same options in both tools, and a searched policy
records the label (`mse+clip+cle`) that `convert.py --policy` applies again.
"""
from __future__ import annotations

from typing import Optional

from absl import flags

FLAGS = flags.FLAGS
#: the flags and what they set in deploy.convert.ptq.PtqOptions
NAMES = ("act_ranges", "percentile", "clip_output", "cle", "bias_correction", "adaround")


def define(*, bias_correction: bool = True) -> None:
    """Define the flags (`bias_correction=False` leaves out the one a search cannot share)."""
    flags.disclaim_key_flags()  # the calling tool's own flags: its --help lists them
    flags.DEFINE_enum("act_ranges", "minmax", ["minmax", "mse", "percentile"],
                      "activation ranges per tensor: global min/max, least quantization MSE, or --percentile")
    flags.DEFINE_float("percentile", 99.99, "share of values kept per side with --act_ranges percentile")
    flags.DEFINE_bool("clip_output", False, "output grid limited to the image's value range")
    flags.DEFINE_bool("cle", False, "cross-layer equalization of conv -> (P)ReLU -> conv weights before conversion")
    if bias_correction:
        flags.DEFINE_bool("bias_correction", False,
                          "each conv's mean output shift under quantization taken out of its bias")
    flags.DEFINE_bool("adaround", False, "CONV_2D weight rounding learned on the calibration patches (AdaRound)")


def from_flags() -> Optional[dict]:
    """The options the user gave, or None when no PTQ flag was passed (the default route)."""
    names = [n for n in NAMES if n in FLAGS]
    if not any(FLAGS[n].present for n in names):
        return None
    return {n: FLAGS[n].value for n in names}
