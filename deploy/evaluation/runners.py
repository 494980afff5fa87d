"""Turn an LR uint8 image into an SR uint8 image with a TFLite or Keras model.

Fixed-shape TFLite models (what NPUs need and what we export) are run tile by tile with an
overlap, so whole images of any size are evaluated; each tile contributes only its centre, so
seams carry `overlap` LR pixels of context; an image smaller than one tile is mirror-padded.
I/O quantization is read from the model, so int8, uint8, int16 and float I/O all work.

`workers > 1` runs tiles (and, with `map`, whole images) on that many interpreters at once.
LiteRT's int16 kernels are single-threaded reference code, so on a 2-core desktop two
1-thread interpreters run an a16w8 model faster than one 2-thread interpreter; int8/float
(XNNPACK) gain little. The measured speed-ups per model are in bench/results/runner_workers.json
(`python bench/runner_workers.py`); they are not repeated here so they cannot drift.
"""
from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np

from deploy.data.io_convention import IOConvention
from deploy.convert.tflite_io import TFLiteError, make_interpreter


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


def tile_cores(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """(start, core_lo, core_hi) per tile: the cores partition [0, length). The last tile is
    shifted back to end at the edge, so its core overlaps its neighbour's; the overlap goes to
    the later tile (what a sequential run wrote last), so tiles run in parallel write disjoint
    pixels and the result does not depend on which thread finishes first."""
    starts = tile_starts(length, tile, overlap)
    cores = [_core(s, tile, length, overlap) for s in starts]
    out = []
    for i, (s, (lo, hi)) in enumerate(zip(starts, cores)):
        if i + 1 < len(cores):
            hi = min(hi, cores[i + 1][0])
        out.append((s, lo, hi))
    return out


def available_cores() -> int:
    """Cores this process may use (CPU affinity, e.g. a CI container's limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


#: (model, num_threads) -> an object with the LiteRT Interpreter's call shape
#: (get_input_details / get_output_details / allocate_tensors / set_tensor / invoke / get_tensor).
InterpreterFactory = Callable[[Any, int], Any]


def default_interpreter(model: bytes | str | Path, num_threads: int) -> Any:
    return make_interpreter(model, num_threads=num_threads)


class _Slot:
    """One interpreter and its I/O details; a slot is used by one thread at a time."""

    def __init__(self, model: bytes | str | Path, num_threads: int, factory: InterpreterFactory):
        self.interp = factory(model, num_threads)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        if tuple(self.inp["shape"][1:3]) != x.shape[1:3]:  # only dynamic-shape models get here
            self.interp.resize_tensor_input(self.inp["index"], list(x.shape))
            self.interp.allocate_tensors()
            self.inp = self.interp.get_input_details()[0]
            self.out = self.interp.get_output_details()[0]
        self.interp.set_tensor(self.inp["index"], x)
        self.interp.invoke()
        return self.interp.get_tensor(self.out["index"])


class TFLiteRunner:
    """Runs a .tflite SR model with the LiteRT interpreter (XNNPACK where it applies), or with any
    interpreter-shaped object `interpreter_factory` makes (e.g. an emulated NPU)."""

    def __init__(self, model: bytes | str | Path, scale: int, *, num_threads: int = 2,
                 overlap: int = 8, convention: IOConvention = IOConvention(),
                 workers: Optional[int] = None, interpreter_factory: Optional[InterpreterFactory] = None):
        """`workers=None`: one interpreter per available core for fixed-shape models (tiled), one
        interpreter with `num_threads` threads for dynamic-shape models (one call per image).
        `interpreter_factory(model, num_threads)`: default LiteRT's interpreter; it is called once
        per worker, tiling and I/O (de)quantization are the same whatever it returns."""
        factory = interpreter_factory or default_interpreter
        first = _Slot(model, num_threads, factory)
        self.scale, self.overlap, self.convention = scale, overlap, convention
        self._in, self._out = first.inp, first.out
        sig = self._in["shape_signature"]
        if len(sig) != 4 or sig[-1] != convention.n_channels:
            raise TFLiteError(f"expected an NHWC input with {convention.n_channels} channel(s) "
                              f"(--channels {convention.channels}), got shape {list(sig)}")
        self.fixed_hw = None if (sig[1] < 0 or sig[2] < 0) else (int(sig[1]), int(sig[2]))
        if workers is None:
            workers = min(num_threads, available_cores()) if self.fixed_hw else 1
        workers = max(1, int(workers))
        self._slots = ([first] if workers == 1 else
                       [_Slot(model, max(1, num_threads // workers), factory) for _ in range(workers)])
        self._free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        for slot in self._slots:
            self._free.put(slot)
        self._count_lock = threading.Lock()
        self.interp = self._slots[0].interp
        self.invocations = 0

    @property
    def workers(self) -> int:
        return len(self._slots)

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
        """One model call on an LR uint8 RGB tile -> the model's output (its own units).
        Thread-safe: each concurrent caller gets its own interpreter (at most `workers`)."""
        return self.invoke_batch([lr_tile])[0]

    def invoke_batch(self, lr_tiles: Sequence[np.ndarray]) -> np.ndarray:
        """One call on a batch of LR tiles (a batch of one for LiteRT's fixed-shape models; any
        size for interpreters with `batched`, e.g. IntegerInterpreter)."""
        x = self._quantize(self.convention.model_input(np.stack(lr_tiles).astype(np.float32) / 255.0))
        slot = self._free.get()  # blocks while every interpreter is busy
        try:
            y = slot.run(x)
            with self._count_lock:
                self.invocations += len(lr_tiles)
        finally:
            self._free.put(slot)
        return self._dequantize(y)

    def map(self, lrs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """SR of many images, `workers` at a time (each image's tiles on one interpreter)."""
        if self.workers == 1 or len(lrs) < 2:
            return [self._upscale(lr, parallel=False) for lr in lrs]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda lr: self._upscale(lr, parallel=False), lrs))

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        return self._upscale(lr, parallel=self.workers > 1)

    def _upscale(self, lr: np.ndarray, parallel: bool) -> np.ndarray:
        h, w = lr.shape[:2]
        if self.fixed_hw is None:
            return self._finish(self.invoke(lr), lr)
        th, tw = self.fixed_hw
        s, o = self.scale, self.overlap
        if h < th or w < tw:
            # smaller than one tile (e.g. a 240 px crop at x4 under a 64x64 model): mirror-pad to
            # a tile, as an app on the phone would, and keep the image's own part
            return self._upscale(pad_to_tile(lr, (th, tw)), parallel)[:h * s, :w * s]
        out = np.zeros((h * s, w * s, self._out["shape"][-1]), np.float32)
        tiles = [(ty, tx) for ty in tile_cores(h, th, o) for tx in tile_cores(w, tw, o)]

        def place(sr: np.ndarray, ty: tuple[int, int, int], tx: tuple[int, int, int]) -> None:
            (y, y0, y1), (x, x0, x1) = ty, tx
            out[y0 * s:y1 * s, x0 * s:x1 * s] = sr[(y0 - y) * s:(y1 - y) * s, (x0 - x) * s:(x1 - x) * s]

        def one(origin: tuple) -> None:
            ty, tx = origin
            place(self.invoke(lr[ty[0]:ty[0] + th, tx[0]:tx[0] + tw]), ty, tx)

        if getattr(self.interp, "batched", False):  # one call for many tiles (IntegerInterpreter)
            for i in range(0, len(tiles), BATCH_TILES):
                chunk = tiles[i:i + BATCH_TILES]
                srs = self.invoke_batch([lr[ty[0]:ty[0] + th, tx[0]:tx[0] + tw] for ty, tx in chunk])
                for sr, (ty, tx) in zip(srs, chunk):
                    place(sr, ty, tx)
        elif parallel and len(tiles) > 1:
            with ThreadPoolExecutor(self.workers) as pool:
                list(pool.map(one, tiles))
        else:
            for t in tiles:
                one(t)
        return self._finish(out, lr)

    def _finish(self, out: np.ndarray, lr: np.ndarray) -> np.ndarray:
        if self.convention.channels != "rgb":   # chroma comes from the whole LR image
            return _to_uint8(self.convention.to_rgb01(out, lr.astype(np.float32) / 255.0, self.scale))
        # elementwise: in strips of rows, so a 24-megapixel output never exists in float64 at once
        res = np.empty(out.shape, np.uint8)
        for r0 in range(0, out.shape[0], FINISH_ROWS):
            res[r0:r0 + FINISH_ROWS] = _to_uint8(self.convention.to_rgb01(out[r0:r0 + FINISH_ROWS], None, self.scale))
        return res


class KerasRunner:
    """The float Keras model (the reference every precision is held to): whole images, or with a
    known receptive `radius` big images in `tile`-sized LR pieces, each run with `radius` + 2
    pixels of real context on every side, so the result is the whole-image one while memory
    stays that of one tile (a 4K photo at once needs tens of GB of feature maps)."""

    def __init__(self, model, scale: int, convention: IOConvention = IOConvention(), *,
                 radius: Optional[float] = None, tile: int = 256):
        self.model, self.scale, self.convention = model, scale, convention
        self.context = None if radius is None else int(np.ceil(radius)) + 2
        self.tile = tile

    def _run(self, lr01: np.ndarray) -> np.ndarray:
        return self.model(self.convention.model_input(lr01[None]), training=False)[0].numpy()

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        lr01 = lr.astype(np.float32) / 255.0
        h, w = lr.shape[:2]
        c, t, s = self.context, self.tile, self.scale
        if c is None or (h <= t + 2 * c and w <= t + 2 * c):
            return _to_uint8(self.convention.to_rgb01(self._run(lr01), lr01, s))
        y = None
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                a, b = max(0, y0 - c), max(0, x0 - c)
                part = self._run(lr01[a:min(h, y1 + c), b:min(w, x1 + c)])
                if y is None:
                    y = np.empty((h * s, w * s, part.shape[-1]), part.dtype)
                y[y0 * s:y1 * s, x0 * s:x1 * s] = part[(y0 - a) * s:(y1 - a) * s, (x0 - b) * s:(x1 - b) * s]
        return _to_uint8(self.convention.to_rgb01(y, lr01, s))


FINISH_ROWS = 512
#: tiles per call for interpreters that take a batch (memory: 16 EDSR 64x64 tiles are ~100 MB of int64)
BATCH_TILES = 16


def _to_uint8(y01: np.ndarray) -> np.ndarray:
    return np.clip(np.round(y01 * 255.0), 0, 255).astype(np.uint8)
