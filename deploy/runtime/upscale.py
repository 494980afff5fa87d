"""`deploy.upscale`: one image upscaled in tiles by a source's policy model, each tile optionally
routed to the all-a16w8 model (the adaptive pair, deploy/runtime/pair.py) and the seams blended.

Why in the library: a script or a notebook gets what `tools/upscale.py` does, from a frozen
`UpscaleConfig` (declared, checked once, `to_json` / `from_json`) to a frozen `UpscaleResult`
(the SR image and its report; small repr, `to_json()`, `save(path)` writing the image and its
`.json` atomically). deploy/commands/upscale_jobs.py only turns flags into the config.
"""
from __future__ import annotations

import dataclasses
import io
import time
import types
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from deploy._files import atomic_write, check_outputs, check_writable, dumps_json
from deploy.convert import args
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource, require_source
from deploy.data import images
from deploy.errors import UserInputError
from deploy.runtime import adaptive
from deploy.runtime.adaptive import DEFAULT_CRITERION
from deploy.runtime.pair import DEFAULT_CACHE, build_pair

#: the share of tiles routed wide when adaptive routing names neither a fraction nor a threshold
DEFAULT_WIDE_FRACTION = 0.25


@dataclasses.dataclass(frozen=True)
class UpscaleConfig:
    """Options of `deploy.upscale` besides the source, the policy and the image.

    adaptive: route each tile to the policy model or the all-a16w8 one by `criterion`; off: every
        tile runs the policy's model.
    wide_fraction / threshold: with `adaptive`, route this share of tiles wide, or every tile
        whose criterion is >= threshold (neither: 0.25 of them).
    tile: the fixed LR tile (the models' input size); blend: seam cross-fade width (LR pixels).
    cache_dir: where built pairs are kept (None: nowhere; default: the user cache's upscale/).
    calib_dir, calib_images: calibration photos of both models; num_threads: interpreter threads."""
    adaptive: bool = True
    wide_fraction: Optional[float] = None
    threshold: Optional[float] = None
    criterion: str = DEFAULT_CRITERION
    tile: tuple[int, int] = (64, 64)
    blend: int = 4
    cache_dir: Optional[str] = str(DEFAULT_CACHE)
    calib_dir: Optional[str] = None
    calib_images: int = 8
    num_threads: int = 2

    def __post_init__(self) -> None:
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - normalising a frozen value
        put("tile", args.input_size(self.tile, allow_none=False))
        put("blend", args.count("blend", self.blend, minimum=0))
        put("calib_images", args.count("calib_images", self.calib_images))
        put("num_threads", args.count("num_threads", self.num_threads))
        adaptive.criterion(self.criterion)
        for name in ("cache_dir", "calib_dir"):
            value = getattr(self, name)
            put(name, str(value) if value not in (None, "") else None)
        if not self.adaptive:
            if self.wide_fraction is not None or self.threshold is not None:
                raise UserInputError("wide_fraction/threshold need adaptive=True", option="wide_fraction")
            return
        if self.wide_fraction is None and self.threshold is None:
            put("wide_fraction", DEFAULT_WIDE_FRACTION)
        adaptive.route(np.zeros((1, 1)), wide_fraction=self.wide_fraction, threshold=self.threshold)  # checks them

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "tile": list(self.tile)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "UpscaleConfig":
        """The config `to_json` wrote (a report's `config`), checked again."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - names)
        if unknown:
            raise UserInputError(f"unknown UpscaleConfig field(s): {', '.join(unknown)}", option=unknown[0])
        return cls(**{**obj, **({"tile": tuple(obj["tile"])} if "tile" in obj else {})})


def encode_image(img: np.ndarray, suffix: str) -> bytes:
    """`img` as the file type of `suffix` (JPEG/WebP at quality 95)."""
    from PIL import Image
    buf = io.BytesIO()
    fmt = Image.registered_extensions()[suffix.lower()]
    Image.fromarray(img).save(buf, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def check_output(out: str | Path, inputs: tuple = (), *, overwrite: bool = False) -> None:
    """`out` and its report: a known image type, never an input, never over a file without
    `overwrite`; said before the minute of building."""
    out = Path(out)
    if out.suffix.lower() not in images.IMAGE_SUFFIXES:
        raise UserInputError(f"out {out}: unknown image type '{out.suffix}'; use .png (or "
                             f"{', '.join(sorted(images.IMAGE_SUFFIXES - {'.png'}))})", option="out", file=out)
    check_outputs((out, out.with_suffix(".json")), inputs, overwrite=overwrite)


@dataclasses.dataclass(frozen=True, repr=False)
class UpscaleResult:
    """The SR image (uint8 RGB) and its report (tiles, route, wide fraction, times, config).

    `save(path)` writes the image (type from the suffix) and the report beside it (.json)."""
    sr: np.ndarray
    report: Mapping[str, Any]

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        r = self.report
        return brief_repr(self, model=r.get("model"), scale=r.get("scale"), output_hw=r.get("output_hw"),
                          tiles=r.get("tiles"), wide_fraction=r.get("wide_fraction"))

    def to_json(self) -> dict[str, Any]:
        import json
        return json.loads(dumps_json(dict(self.report)))

    def report_for(self, path: str | Path) -> dict[str, Any]:
        """The report as `save(path)` writes it: `output` named beside `input`."""
        rep = {}
        for k, v in self.to_json().items():
            rep[k] = v
            if k == "input":
                rep["output"] = str(path)
        return rep

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the image at `path` and its report at `path` with .json, atomically."""
        path = Path(path)
        check_output(path, overwrite=overwrite)
        rep = self.report_for(path)
        atomic_write(path, encode_image(self.sr, path.suffix), overwrite=overwrite)
        atomic_write(path.with_suffix(".json"), dumps_json(rep, indent=2) + "\n", overwrite=overwrite)
        return path


def _check_cache_dir(cache_dir: Optional[str]) -> None:
    if not cache_dir:
        return
    d = Path(cache_dir)
    if d.exists() and not d.is_dir():
        raise UserInputError(f"cache_dir {d} is a file, not a folder; pass a folder (or none for no cache)",
                             option="cache_dir", file=d)
    check_writable(d)


def upscale(source: ModelSource, policy: Policy | str | Path, image: str | Path,
            config: Optional[UpscaleConfig] = None, *, progress: bool = False) -> UpscaleResult:
    """Upscale the image file `image` with `source` at `policy` (a `Policy` or its JSON file).

    Both models are built from one calibration (or loaded from `config.cache_dir`), then the
    image runs tile by tile (deploy/runtime/adaptive.py). `progress`: print what happens and a
    tile bar (stdout). Raises UserInputError / PolicyError / DataError (deploy/errors.py)."""
    require_source(source)
    config = UpscaleConfig() if config is None else config
    if not isinstance(config, UpscaleConfig):
        raise UserInputError(f"config must be a deploy.UpscaleConfig, not {type(config).__name__}", option="config")
    t0 = time.perf_counter()
    in_p = Path(image)
    if in_p.suffix.lower() not in images.IMAGE_SUFFIXES:  # as evaluate and convert: no GIF (animated, palette)
        raise UserInputError(f"input {in_p}: '{in_p.suffix}' is not a supported image type; use "
                             f"{', '.join(sorted(images.IMAGE_SUFFIXES))}", option="input", file=in_p)
    _check_cache_dir(config.cache_dir)
    lr = images.load_image(in_p, orient=True)  # EXIF rotation applied: the output is oriented as the photo is viewed
    alpha_dropped = images.has_alpha(in_p)
    if alpha_dropped and progress:
        print(f"note: {in_p.name} has an alpha channel; it is dropped (the SR image is RGB)", flush=True)
    policy = policy if isinstance(policy, Policy) else Policy.load(policy)
    policy.validate(model=source.name, scale=source.scale)
    scale, c = source.scale, config
    if progress:  # stdout: stderr stays one line on error
        print(f"{in_p.name}: {lr.shape[1]}x{lr.shape[0]} -> {lr.shape[1] * scale}x{lr.shape[0] * scale}; "
              "building or loading the models...", flush=True)
    pair = build_pair(source, policy, c.tile, calib_dir=c.calib_dir, calib_images=c.calib_images, cache_dir=c.cache_dir)
    t_built = time.perf_counter()
    from deploy.evaluation.runners import TFLiteRunner
    fast = TFLiteRunner(pair.fast, scale, num_threads=c.num_threads, convention=source.convention)
    wide = TFLiteRunner(pair.wide, scale, num_threads=c.num_threads, convention=source.convention) if c.adaptive else None
    from tqdm import tqdm
    with tqdm(desc=f"upscaling {in_p.name}", unit="tile", disable=not progress, mininterval=1.0) as bar:
        def on_tile(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        res = adaptive.upscale(lr, fast.invoke, wide.invoke if wide else None, tile=c.tile, scale=scale,
                               margin=pair.margin, blend=c.blend, criterion_name=c.criterion,
                               wide_fraction=c.wide_fraction, threshold=c.threshold, convention=source.convention,
                               on_tile=on_tile)
    report = {**source.to_json(), "input": str(in_p),
              "input_hw": list(lr.shape[:2]), "output_hw": list(res.sr.shape[:2]), "alpha_dropped": alpha_dropped,
              "policy": policy.to_json(), "adaptive": c.adaptive,
              "criterion": c.criterion if c.adaptive else None,
              "wide_fraction_requested": c.wide_fraction if c.adaptive else None,
              "threshold": c.threshold if c.adaptive else None,
              "models": {"key": pair.key, "cached": pair.cached, "cache_dir": c.cache_dir,
                         "build_seconds": round(t_built - t0, 2)},
              **res.summary(), "total_seconds": round(time.perf_counter() - t0, 2), "config": c.to_json()}
    return UpscaleResult(res.sr, types.MappingProxyType(report))


__all__ = ["UpscaleConfig", "UpscaleResult", "check_output", "encode_image", "upscale"]
