"""Turn an LR uint8 image into an SR uint8 image with a TFLite or Keras model.

Fixed-shape TFLite models (what NPUs need and what we export) are run tile by tile with an
overlap, so whole images of any size are evaluated; each tile contributes only its centre, so
seams carry `overlap` LR pixels of context; an image smaller than one tile is mirror-padded.
I/O quantization is read from the model, so int8, uint8, int16 and float I/O all work.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from deploy.io_convention import IOConvention
from deploy.tflite_io import TFLiteError, make_interpreter


class SRRunner(Protocol):
    scale: int

    def __call__(self, lr: np.ndarray) -> np.ndarray: ...


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins covering [0, length) so every pixel is inside some tile's centre."""
    if length <= tile:
        return [0]
    step = max(1, tile - 2 * overlap)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def pad_to_tile(lr: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """Mirror-pad bottom/right so both sides reach the tile size (crop the output afterwards)."""
    ph, pw = max(0, tile[0] - lr.shape[0]), max(0, tile[1] - lr.shape[1])
    if ph == 0 and pw == 0:
        return lr
    return np.pad(lr, ((0, ph), (0, pw), (0, 0)), mode="symmetric")


def _core(start: int, tile: int, length: int, overlap: int) -> tuple[int, int]:
    lo = start + (overlap if start > 0 else 0)
    hi = start + tile - (overlap if start + tile < length else 0)
    return lo, hi


class TFLiteRunner:
    """Runs a .tflite SR model with the LiteRT interpreter (XNNPACK where it applies)."""

    def __init__(self, model: bytes | str | Path, scale: int, *, num_threads: int = 2,
                 overlap: int = 8, convention: IOConvention = IOConvention()):
        self.interp = make_interpreter(model, num_threads=num_threads)
        self.scale, self.overlap, self.convention = scale, overlap, convention
        self._in = self.interp.get_input_details()[0]
        self._out = self.interp.get_output_details()[0]
        sig = self._in["shape_signature"]
        if len(sig) != 4 or sig[-1] != convention.n_channels:
            raise TFLiteError(f"expected an NHWC input with {convention.n_channels} channel(s) "
                              f"(--channels {convention.channels}), got shape {list(sig)}")
        self.fixed_hw = None if (sig[1] < 0 or sig[2] < 0) else (int(sig[1]), int(sig[2]))
        self.invocations = 0

    def _quantize(self, x01: np.ndarray) -> np.ndarray:
        dtype = self._in["dtype"]
        scale, zero = self._in["quantization"]
        if np.issubdtype(dtype, np.floating):
            return x01.astype(dtype)
        info = np.iinfo(dtype)
        return np.clip(np.round(x01 / scale + zero), info.min, info.max).astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        scale, zero = self._out["quantization"]
        if np.issubdtype(y.dtype, np.floating):
            return y.astype(np.float32)
        return (y.astype(np.float32) - zero) * scale

    def invoke(self, lr_tile: np.ndarray) -> np.ndarray:
        """One model call on an LR uint8 RGB tile -> the model's output (its own units)."""
        x = self._quantize(self.convention.model_input(lr_tile[None].astype(np.float32) / 255.0))
        if self.fixed_hw is None and tuple(self._in["shape"][1:3]) != x.shape[1:3]:
            self.interp.resize_tensor_input(self._in["index"], list(x.shape))
            self.interp.allocate_tensors()
            self._in = self.interp.get_input_details()[0]
            self._out = self.interp.get_output_details()[0]
        self.interp.set_tensor(self._in["index"], x)
        self.interp.invoke()
        self.invocations += 1
        return self._dequantize(self.interp.get_tensor(self._out["index"]))[0]

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        h, w = lr.shape[:2]
        if self.fixed_hw is None:
            return self._finish(self.invoke(lr), lr)
        th, tw = self.fixed_hw
        s, o = self.scale, self.overlap
        if h < th or w < tw:
            # smaller than one tile (e.g. a 240 px crop at x4 under a 64x64 model): mirror-pad to
            # a tile, as an app on the phone would, and keep the image's own part
            return self(pad_to_tile(lr, (th, tw)))[:h * s, :w * s]
        out = np.zeros((h * s, w * s, self._out["shape"][-1]), np.float32)
        for y in tile_starts(h, th, o):
            y0, y1 = _core(y, th, h, o)
            for x in tile_starts(w, tw, o):
                x0, x1 = _core(x, tw, w, o)
                sr = self.invoke(lr[y:y + th, x:x + tw])
                out[y0 * s:y1 * s, x0 * s:x1 * s] = sr[(y0 - y) * s:(y1 - y) * s, (x0 - x) * s:(x1 - x) * s]
        return self._finish(out, lr)

    def _finish(self, out: np.ndarray, lr: np.ndarray) -> np.ndarray:
        return _to_uint8(self.convention.to_rgb01(out, lr.astype(np.float32) / 255.0, self.scale))


class KerasRunner:
    """The float Keras model, whole image at once (the reference every precision is held to)."""

    def __init__(self, model, scale: int, convention: IOConvention = IOConvention()):
        self.model, self.scale, self.convention = model, scale, convention

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        lr01 = lr.astype(np.float32) / 255.0
        y = self.model(self.convention.model_input(lr01[None]), training=False)[0].numpy()
        return _to_uint8(self.convention.to_rgb01(y, lr01, self.scale))


def _to_uint8(y01: np.ndarray) -> np.ndarray:
    return np.clip(np.round(y01 * 255.0), 0, 255).astype(np.uint8)
