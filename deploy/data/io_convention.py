"""A model's input/output convention, so users' own SR models work unchanged.

The zoo takes RGB in [0, 1]. Public tutorials often take one channel (Y) in [0, 1] or use
[0, 255]. Instead of wrapping the user's model in conversion layers (which would then ship to
the phone), we adapt the data around it: calibration patches are fed in the model's convention,
and evaluation turns RGB LR images into the model's input and its output back into RGB, with
Cb/Cr upscaled by bicubic as those tutorials do. `y` here is full-range JPEG/PIL luma (what
`PIL.Image.convert("YCbCr")` gives), the usual choice of those tutorials; PSNR is still computed
on BT.601 Y of the final RGB image, like every other model.
"""
from __future__ import annotations

from deploy.errors import UserInputError, choice_error

import dataclasses

import numpy as np

from deploy.data.imresize import imresize

CHANNELS = ("rgb", "y")
VALUE_RANGES = ("0-1", "0-255")


#: The fixed LR input (H, W) models are exported, calibrated, searched and priced at by default
#: (NPUs need fixed shapes; images of any size run in tiles of it). Defined here only.
DEFAULT_INPUT_HW = (64, 64)


@dataclasses.dataclass(frozen=True)
class IOConvention:
    channels: str = "rgb"
    value_range: str = "0-1"

    def __post_init__(self):
        if self.channels not in CHANNELS:
            raise choice_error("channels", self.channels, CHANNELS)
        if self.value_range not in VALUE_RANGES:
            raise choice_error("value_range", self.value_range, VALUE_RANGES)

    @property
    def n_channels(self) -> int:
        return 3 if self.channels == "rgb" else 1

    @property
    def peak(self) -> float:
        return 1.0 if self.value_range == "0-1" else 255.0

    def model_input(self, rgb01: np.ndarray) -> np.ndarray:
        """NHWC (or HWC) RGB in [0, 1] -> what the model takes."""
        x = rgb01 if self.channels == "rgb" else _ycbcr(rgb01)[..., :1]
        return (x * self.peak).astype(np.float32)

    def to_rgb01(self, model_out: np.ndarray, lr_rgb01: np.ndarray, scale: int) -> np.ndarray:
        """The model's HWC output (+ the HWC LR image for chroma) -> RGB in [0, 1]."""
        y = np.asarray(model_out, np.float64) / self.peak
        if self.channels == "rgb":
            return y
        ycc = _ycbcr(lr_rgb01)
        chroma = np.stack([imresize(ycc[..., c], output_shape=y.shape[:2]) for c in (1, 2)], -1)
        return _rgb(np.concatenate([y[..., :1], chroma], axis=-1))


def _ycbcr(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], axis=-1)


def _rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 0.5, ycc[..., 2] - 0.5
    return np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
