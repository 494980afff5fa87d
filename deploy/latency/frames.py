"""Video frames on a phone: what a model costs per frame, whole or cut into tiles, and its fps.

Why: people upscale frames (640x360 -> 1920x1080 at x3, 960x540 -> 3840x2160 at x4) at 30 or 60
fps, where a 64x64 latency says little. A device profile prices a fully convolutional graph as
fixed costs (invoke, per-op) plus work proportional to the input's pixels, so a model's cost at
any LR size is exactly `fixed_ms + per_pixel_ms * h * w` (`SizeCost`, from two priced sizes).
A frame can run whole (one invoke) or in tiles of t x t LR pixels, each with `halo` pixels of
context on every side (the receptive radius: tiled output equals the whole-frame output): more
tiles pay the fixed cost more often, bigger tiles pay less halo. `tile_plans` prices both.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Iterable, Mapping, Optional, Sequence

from deploy.latency.device_profiles import LatencyError

__all__ = ["SizeCost", "TilePlan", "size_cost", "tile_plans", "best_plan", "fps_verdict", "lr_frame",
           "STANDARD_FRAMES"]

#: output frames people upscale to, by name (W x H as video people write them)
STANDARD_FRAMES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
TILE_SIDES = (64, 96, 128, 192, 256, 384, 512)


@dataclasses.dataclass(frozen=True)
class SizeCost:
    """Predicted ms of one invoke at an LR input of h x w: fixed_ms + per_pixel_ms * h * w."""
    fixed_ms: float
    per_pixel_ms: float

    def ms(self, h: int, w: int) -> float:
        return self.fixed_ms + self.per_pixel_ms * h * w


def size_cost(predict_ms: Callable[[tuple[int, int]], float],
              sizes: Sequence[tuple[int, int]] = ((64, 64), (96, 128))) -> SizeCost:
    """Fixed and per-pixel cost from the predictions at two input sizes (exact for a profile's
    pricing of a fully convolutional graph; tests/deploy/frames_test.py checks a third size)."""
    (h1, w1), (h2, w2) = sizes
    a, b = predict_ms((h1, w1)), predict_ms((h2, w2))
    per_px = (b - a) / (h2 * w2 - h1 * w1)
    return SizeCost(a - per_px * h1 * w1, per_px)


@dataclasses.dataclass(frozen=True)
class TilePlan:
    tile: Optional[int]       # LR tile side; None: the whole frame in one invoke
    input_hw: tuple[int, int]  # what one invoke sees (tile + 2 halo, or the frame)
    invokes: int
    ms: float                 # per frame

    @property
    def fps(self) -> float:
        return 1e3 / self.ms if self.ms > 0 else math.inf

    def label(self) -> str:
        return "whole frame" if self.tile is None else f"{self.tile}x{self.tile} tiles"

    def to_json(self) -> dict:
        return {"tile": self.tile, "input_hw": list(self.input_hw), "invokes": self.invokes,
                "ms": round(self.ms, 4), "fps": round(self.fps, 2)}


def lr_frame(frame_wh: tuple[int, int], scale: int) -> tuple[int, int]:
    """The LR (h, w) that upscales to an output frame W x H; the frame must be a multiple of scale."""
    w, h = frame_wh
    if w % scale or h % scale:
        raise LatencyError(f"frame {w}x{h} is not a multiple of x{scale}: the LR frame would be "
                           f"{w / scale:g}x{h / scale:g}; pick a frame both sides of which divide by {scale}")
    return h // scale, w // scale


def tile_plans(cost: SizeCost, lr_hw: tuple[int, int], halo: float,
               sides: Iterable[int] = TILE_SIDES) -> list[TilePlan]:
    """The whole frame and every square tile side smaller than the frame, cheapest first."""
    H, W = lr_hw
    r = int(math.ceil(halo))
    plans = [TilePlan(None, (H, W), 1, cost.ms(H, W))]
    for t in sides:
        if t >= max(H, W):
            continue
        n = math.ceil(H / t) * math.ceil(W / t)
        ih, iw = min(t, H) + 2 * r, min(t, W) + 2 * r
        plans.append(TilePlan(t, (ih, iw), n, n * cost.ms(ih, iw)))
    return sorted(plans, key=lambda p: p.ms)


def best_plan(cost: SizeCost, lr_hw: tuple[int, int], halo: float) -> TilePlan:
    return tile_plans(cost, lr_hw, halo)[0]


def fps_verdict(best_fps: Mapping[str, float], fps: float) -> tuple[list[str], str]:
    """(profiles whose best plan reaches `fps`, the best profile) from {profile: its best plan's fps}."""
    if not math.isfinite(fps) or fps <= 0:
        raise LatencyError(f"--fps {fps:g} must be a positive number of frames per second")
    ok = [p for p, f in best_fps.items() if f >= fps]
    return ok, max(best_fps, key=lambda p: best_fps[p])
