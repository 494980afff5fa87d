"""Representative LR patches for calibration: real photos, never the evaluation images.

Default source: the training photos (Debian packages, minus the validation images); when they
are not installed, photos bundled with scikit-image that are not in the evaluation set.
Calibration ranges do not depend on the bit width, so one set serves int8 and int16.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from deploy.data import images as data
from deploy.data.imresize import bicubic_lr
from deploy.data.io_convention import IOConvention

FALLBACK_SKIMAGE = ("immunohistochemistry", "hubble_deep_field", "retina")


@dataclasses.dataclass(frozen=True)
class CalibrationSet:
    patches: np.ndarray  # float32 NHWC in the model's input convention (zoo: RGB in [0, 1])
    images: tuple[str, ...]
    source: str

    def to_json(self) -> dict:
        return {"source": self.source, "images": list(self.images),
                "patches": int(self.patches.shape[0]), "patch_hw": list(self.patches.shape[1:3])}


def _default_lr_images(scale: int, n_images: int) -> tuple[list[tuple[str, np.ndarray]], str]:
    try:
        train, _ = data.split_train_val(data.train_files())
        chosen = train[:n_images]
        return [(p.stem, data.cached_pair(p, scale)[1]) for p in chosen], "debian-photos"
    except data.DataError:
        import skimage.data
        imgs = [(n, data.to_rgb8(getattr(skimage.data, n)(), n)) for n in FALLBACK_SKIMAGE[:n_images]]
        return [(n, bicubic_lr(img, scale)) for n, img in imgs], "skimage"


def calibration_set(scale: int, patch_hw: Sequence[int], *, calib_dir: Optional[str | Path] = None,
                    n_images: int = 8, patches_per_image: int = 4, seed: int = 0,
                    convention: IOConvention = IOConvention()) -> CalibrationSet:
    """LR patches of the model's input size from `calib_dir` (HR photos) or the default set."""
    if calib_dir:
        files = data.image_files(calib_dir)[:n_images]
        lrs = [(p.stem, bicubic_lr(data.load_image(p), scale)) for p in files]
        source = str(calib_dir)
    else:
        lrs, source = _default_lr_images(scale, n_images)
    ph, pw = int(patch_hw[0]), int(patch_hw[1])
    rng = np.random.default_rng(seed)
    out = []
    for name, lr in lrs:
        h, w = lr.shape[:2]
        if h < ph or w < pw:
            raise data.DataError(f"calibration image {name} ({w}x{h} LR) is smaller than the "
                                 f"model input {pw}x{ph}")
        for _ in range(patches_per_image):
            y, x = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
            out.append(lr[y:y + ph, x:x + pw])
    patches = convention.model_input(np.stack(out).astype(np.float32) / 255.0)
    return CalibrationSet(patches, tuple(n for n, _ in lrs), source)
