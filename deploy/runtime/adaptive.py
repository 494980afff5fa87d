"""Run-time patch-adaptive precision (NAWQ-SR's run-time side): tile, score, route, blend.

An image of any size is cut into overlapping fixed-size LR tiles (the fixed input NPUs need).
A cheap criterion scores every LR tile; the tiles that need precision most go to the wide
(all-a16w8) model, the rest to the fast hybrid model. Seams: neighbouring tiles overlap by
`2 * margin + blend` LR pixels, where `margin` >= the model's receptive radius (pixels that
close to a tile's inner edge saw zero padding instead of the neighbour, so they get weight 0)
and a raised-cosine ramp `blend` pixels wide cross-fades the two tiles. Where both tiles took
the same model their exact values agree, so the blend changes nothing; where they differ, the
change is spread over the ramp instead of a hard edge.

Everything here but `upscale` is pure numpy; `upscale` only calls the two tile runners
(`deploy.evaluation.runners.TFLiteRunner.invoke`-like callables: uint8 LR tile -> model-units output).
Building and caching the two models lives in `deploy.runtime.pair`.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
import math
import time
from typing import Callable, Mapping, Optional

import numpy as np
from scipy import ndimage

from deploy.data.io_convention import IOConvention
from deploy.data.metrics import rgb_to_y
from deploy.evaluation.runners import pad_to_tile

TileFn = Callable[[np.ndarray], np.ndarray]  # uint8 LR tile (h, w, 3) -> model output (h*s, w*s, c)
Index = tuple[int, int]


def axis_starts(length: int, tile: int, step: int) -> list[int]:
    """Tile origins along one axis: every `step` pixels, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, max(1, step)))
    return starts + [length - tile]


def ramp(n: int) -> np.ndarray:
    """Raised-cosine ramp sampled at pixel centres: never 0 or 1, and ramp + ramp[::-1] == 1."""
    return np.sin(np.pi / 2 * (np.arange(n) + 0.5) / n) ** 2 if n > 0 else np.zeros(0)


def axis_window(start: int, tile: int, length: int, margin: int, blend: int, scale: int = 1) -> np.ndarray:
    """Weights of one tile along one axis, `tile * scale` long (SR pixels when scale > 1).

    Sides on the image border keep weight 1 to the edge; inner sides get `margin` zeros (inexact
    pixels) then a ramp `blend` pixels wide.
    """
    w = np.ones(tile * scale)
    m, b = margin * scale, blend * scale
    if start > 0:
        w[:m] = 0.0
        w[m:m + b] = ramp(b)
    if start + tile < length:
        w[len(w) - m:] = 0.0
        w[len(w) - m - b:len(w) - m] = ramp(b)[::-1]
    return w


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Where the tiles of one (padded) LR image sit; `ys` x `xs` tiles, route maps are that shape."""
    height: int  # padded LR size (>= tile)
    width: int
    tile: tuple[int, int]
    margin: int
    blend: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ys), len(self.xs)

    def origin(self, ij: Index) -> tuple[int, int]:
        return self.ys[ij[0]], self.xs[ij[1]]

    def indices(self) -> list[Index]:
        return [(i, j) for i in range(len(self.ys)) for j in range(len(self.xs))]

    def crop(self, img: np.ndarray, ij: Index, scale: int = 1) -> np.ndarray:
        y, x = self.origin(ij)
        th, tw = self.tile
        return img[y * scale:(y + th) * scale, x * scale:(x + tw) * scale]

    def window(self, ij: Index, scale: int = 1) -> np.ndarray:
        """2-D weights of tile `ij` (outer product of the two axis windows)."""
        y, x = self.origin(ij)
        th, tw = self.tile
        return np.outer(axis_window(y, th, self.height, self.margin, self.blend, scale),
                        axis_window(x, tw, self.width, self.margin, self.blend, scale))


def plan(height: int, width: int, tile: tuple[int, int], margin: int, blend: int) -> TileGrid:
    """Tiles covering a padded LR image (both sides >= the tile); ValueError when the tile
    cannot hold two margins and a ramp."""
    th, tw = tile
    if height < th or width < tw:
        raise UserInputError(f"image {width}x{height} is smaller than the {tw}x{th} tile; pad it first (pad_to_tile)")
    overlap = 2 * margin + blend
    if overlap >= min(th, tw):
        raise UserInputError(f"a {tw}x{th} tile cannot overlap its neighbours by {overlap} LR pixels "
                         f"(2 x receptive margin {margin} + blend {blend}); use a larger --tile or --blend 0")
    return TileGrid(height, width, (th, tw), margin, blend,
                    tuple(axis_starts(height, th, th - overlap)), tuple(axis_starts(width, tw, tw - overlap)))


def blend_tiles(grid: TileGrid, outputs: Mapping[Index, np.ndarray], scale: int) -> np.ndarray:
    """Weighted average of the tiles' SR outputs (model units) over the padded SR image."""
    first = next(iter(outputs.values()))
    acc = np.zeros((grid.height * scale, grid.width * scale, first.shape[-1]), np.float64)
    wsum = np.zeros(acc.shape[:2], np.float64)
    th, tw = grid.tile
    for ij, out in outputs.items():
        y, x = grid.origin(ij)
        w = grid.window(ij, scale)
        acc[y * scale:(y + th) * scale, x * scale:(x + tw) * scale] += w[..., None] * out
        wsum[y * scale:(y + th) * scale, x * scale:(x + tw) * scale] += w
    if not wsum.min() > 0:
        raise AssertionError("tile weights leave pixels uncovered")  # a bug in plan/axis_window
    return acc / wsum[..., None]


def compose(grid: TileGrid, fast: Mapping[Index, np.ndarray], wide: Mapping[Index, np.ndarray],
            route: np.ndarray, scale: int) -> np.ndarray:
    """Blend each tile's output from the path its route chose (route[i, j] True = wide)."""
    return blend_tiles(grid, {ij: (wide if route[ij] else fast)[ij] for ij in grid.indices()}, scale)


# ---- criteria: LR uint8 RGB -> a per-pixel map; a tile's score is its window-weighted mean ----

def _luma(lr: np.ndarray) -> np.ndarray:
    return rgb_to_y(lr)


def gradient_energy(lr: np.ndarray) -> np.ndarray:
    """Squared forward differences of luma: edges and texture."""
    y = _luma(lr)
    dy = np.diff(y, axis=0, append=y[-1:])
    dx = np.diff(y, axis=1, append=y[:, -1:])
    return dx * dx + dy * dy


def local_variance(lr: np.ndarray) -> np.ndarray:
    """Luma variance in a 3x3 neighbourhood."""
    y = _luma(lr)
    m = ndimage.uniform_filter(y, 3, mode="reflect")
    return np.maximum(ndimage.uniform_filter(y * y, 3, mode="reflect") - m * m, 0.0)


def flatness(lr: np.ndarray) -> np.ndarray:
    """Negative gradient energy: flat tiles, where quantization noise is not masked by texture
    (the float model's own error is small there), score high. Best rank correlation with a
    tile's own PSNR gain, but whole-image PSNR follows squared error, which it does not predict."""
    return -gradient_energy(lr)


def luma(lr: np.ndarray) -> np.ndarray:
    """Brightness: int8 steps are uniform, so the noise they leave depends on the signal level."""
    return _luma(lr)


def extremes(lr: np.ndarray) -> np.ndarray:
    """1 where a channel is near black or white (activations near the calibrated range's ends)."""
    return ((lr <= 8) | (lr >= 247)).any(axis=-1).astype(np.float64)


#: name -> (per-pixel map, arithmetic ops per LR pixel: the cost model charges that much per tile)
CRITERIA: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int]] = {
    "flatness": (flatness, 10),
    "gradient_energy": (gradient_energy, 10),
    "local_variance": (local_variance, 14),
    "extremes": (extremes, 7),
    "luma": (luma, 5),
}
#: Chosen by bench/adaptive.py: routing the most textured tiles wide captured the largest share
#: of the oracle's PSNR gain of the cheap criteria (tied with local_variance, which costs more),
#: clearly above random routing; see bench/results/adaptive*.json.
DEFAULT_CRITERION = "gradient_energy"


def criterion(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name not in CRITERIA:
        raise UserInputError(f"unknown criterion '{name}'; choose one of {', '.join(CRITERIA)}")
    return CRITERIA[name][0]


def score_tiles(lr: np.ndarray, grid: TileGrid, name: str = DEFAULT_CRITERION) -> np.ndarray:
    """(ny, nx) scores: the criterion's map averaged with each tile's LR blending window, so a
    tile is judged on the pixels it contributes."""
    fn = criterion(name)
    scores = np.zeros(grid.shape)
    for ij in grid.indices():
        w = grid.window(ij)
        scores[ij] = float((w * fn(grid.crop(lr, ij))).sum() / w.sum())
    return scores


def route(scores: np.ndarray, *, wide_fraction: Optional[float] = None,
          threshold: Optional[float] = None) -> np.ndarray:
    """Boolean map, True = wide. Either the top `wide_fraction` of tiles (rounded up; ties by
    tile order) or every tile scoring >= `threshold`."""
    if (wide_fraction is None) == (threshold is None):
        raise UserInputError("give exactly one of wide_fraction or threshold", option="wide_fraction")
    if threshold is not None:
        if not math.isfinite(threshold):  # NaN routes nothing, and is not JSON in the report
            raise UserInputError(f"threshold must be a finite number, not {threshold}", option="threshold",
                                 value=threshold)
        return scores >= threshold
    if not 0.0 <= wide_fraction <= 1.0 or math.isnan(wide_fraction):
        raise UserInputError(f"wide_fraction {wide_fraction} must be a finite number between 0 and 1",
                             option="wide_fraction", value=wide_fraction)
    k = math.ceil(round(wide_fraction * scores.size, 9))
    out = np.zeros(scores.size, bool)
    out[np.argsort(-scores.ravel(), kind="stable")[:k]] = True
    return out.reshape(scores.shape)


# ---- the run-time loop ----

def finish(model_out: np.ndarray, padded_lr: np.ndarray, hw: tuple[int, int], scale: int,
           convention: IOConvention = IOConvention()) -> np.ndarray:
    """Blended model output -> uint8 RGB, cropped to `scale` x the unpadded LR size `hw`."""
    # float32 like the runners' own output: identical tiles then give bit-identical images
    rgb01 = convention.to_rgb01(model_out.astype(np.float32), padded_lr.astype(np.float32) / 255.0, scale)
    return np.clip(np.round(rgb01 * 255.0), 0, 255).astype(np.uint8)[:hw[0] * scale, :hw[1] * scale]


@dataclasses.dataclass(frozen=True)
class Upscaled:
    sr: np.ndarray  # uint8 RGB, scale x the input
    route: np.ndarray  # (ny, nx) bool, True = wide
    scores: np.ndarray  # (ny, nx) criterion values
    grid: TileGrid
    seconds: dict[str, float]  # criterion / fast / wide / blend

    def summary(self) -> dict:
        n = int(self.route.size)
        return {"tiles": n, "tile_grid": list(self.grid.shape), "wide_tiles": int(self.route.sum()),
                "wide_fraction": round(float(self.route.sum()) / n, 4),
                "route": self.route.astype(int).tolist(), "scores": np.round(self.scores, 4).tolist(),
                "tile_lr": list(self.grid.tile), "margin_lr": self.grid.margin, "blend_lr": self.grid.blend,
                "seconds": {k: round(v, 4) for k, v in self.seconds.items()}}


def run_tiles(lr: np.ndarray, grid: TileGrid, fn: TileFn, which: Optional[np.ndarray] = None) -> dict[Index, np.ndarray]:
    """Model outputs of the tiles where `which` is True (all when None)."""
    return {ij: np.asarray(fn(grid.crop(lr, ij)), np.float32) for ij in grid.indices()
            if which is None or which[ij]}


def _finish_rows(rows: np.ndarray, padded_lr: np.ndarray, r0: int, scale: int,
                 convention: IOConvention) -> np.ndarray:
    """`finish` for SR rows [r0, r0 + len(rows)) of the padded image: RGB models need nothing
    else; Y models take chroma from the LR rows around them (4 LR rows of context: bicubic's
    support, so each row is what the whole image would give)."""
    if convention.channels == "rgb":
        return np.clip(np.round(convention.to_rgb01(rows, None, scale) * 255.0), 0, 255).astype(np.uint8)
    n = rows.shape[0]
    l0, l1 = max(0, r0 // scale - 4), min(padded_lr.shape[0], -(-(r0 + n) // scale) + 4)
    ext = np.zeros(((l1 - l0) * scale,) + rows.shape[1:], np.float32)
    off = r0 - l0 * scale
    ext[off:off + n] = rows
    rgb01 = convention.to_rgb01(ext, padded_lr[l0:l1].astype(np.float32) / 255.0, scale)[off:off + n]
    return np.clip(np.round(rgb01 * 255.0), 0, 255).astype(np.uint8)


def stream_tiles(padded: np.ndarray, grid: TileGrid, fast: TileFn, wide: Optional[TileFn], chosen: np.ndarray,
                 scale: int, hw: tuple[int, int], convention: IOConvention = IOConvention(),
                 on_tile: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """Run and blend the tiles one row of tiles at a time, finishing SR rows as soon as no later
    tile touches them: memory is the uint8 output plus one band of tile height (never every
    tile's output, never a float image of the whole output). Same arithmetic as `blend_tiles` +
    `finish` in the same order, so the pixels are the same."""
    s, (th, tw) = scale, grid.tile
    out = np.empty((hw[0] * s, hw[1] * s, 3), np.uint8)
    band, width = th * s, grid.width * s
    acc: Optional[np.ndarray] = None
    wsum = np.zeros((band, width), np.float64)
    base, done, total = 0, 0, len(grid.ys) * len(grid.xs)

    def flush(n: int) -> None:  # rows [base, base + n) are final
        stop = min(base + n, out.shape[0])
        if stop > base:
            if not wsum[:stop - base].min() > 0:
                raise AssertionError("tile weights leave pixels uncovered")  # a bug in plan/axis_window
            rows = (acc[:stop - base] / wsum[:stop - base, :, None]).astype(np.float32)
            out[base:stop] = _finish_rows(rows, padded, base, s, convention)[:, :out.shape[1]]

    for i, y in enumerate(grid.ys):
        shift = y * s - base
        if shift and acc is not None:
            flush(shift)
            acc[:band - shift], wsum[:band - shift] = acc[shift:].copy(), wsum[shift:].copy()
            acc[band - shift:], wsum[band - shift:] = 0.0, 0.0
        base = y * s
        for j, x in enumerate(grid.xs):
            fn = wide if chosen[i, j] else fast
            o = np.asarray(fn(grid.crop(padded, (i, j))), np.float32)
            if acc is None:
                acc = np.zeros((band, width, o.shape[-1]), np.float64)
            wgt = grid.window((i, j), s)
            acc[:, x * s:(x + tw) * s] += wgt[..., None] * o
            wsum[:, x * s:(x + tw) * s] += wgt
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    flush(band)
    return out


def upscale(lr: np.ndarray, fast: TileFn, wide: Optional[TileFn], *, tile: tuple[int, int], scale: int,
            margin: int, blend: int = 4, criterion_name: str = DEFAULT_CRITERION,
            wide_fraction: Optional[float] = None, threshold: Optional[float] = None,
            convention: IOConvention = IOConvention(),
            on_tile: Optional[Callable[[int, int], None]] = None) -> Upscaled:
    """LR uint8 RGB of any size -> SR uint8 RGB; `wide=None` runs every tile on `fast`.
    Streams (`stream_tiles`): bounded memory on big images; `on_tile(done, total)` after each tile."""
    h, w = lr.shape[:2]
    padded = pad_to_tile(lr, tile)
    grid = plan(padded.shape[0], padded.shape[1], tile, margin, blend)
    t = {"criterion": time.perf_counter()}
    if wide is None:
        scores, chosen = np.zeros(grid.shape), np.zeros(grid.shape, bool)
    else:
        scores = score_tiles(padded, grid, criterion_name)
        chosen = route(scores, wide_fraction=wide_fraction, threshold=threshold)
    t["tiles"] = time.perf_counter()  # fast and wide tiles, blended as they come
    sr = stream_tiles(padded, grid, fast, wide, chosen, scale, (h, w), convention, on_tile)
    t["end"] = time.perf_counter()
    keys = list(t)
    seconds = {k: t[keys[i + 1]] - t[k] for i, k in enumerate(keys[:-1])}
    return Upscaled(sr, chosen, scores, grid, seconds)
