"""Representative LR patches for calibration: real photos, never the evaluation images.

Default source: the shipped calibration photos (deploy/data/shipped.py), identical on every
machine; `calib_dir`: a user's folder. A missing source is a MissingDataError, never replaced by
other images. Calibration ranges do not depend on the bit width, so one set serves int8 and int16.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from deploy.data import images as data
from deploy.data import shipped
from deploy.provenance import images_sha256
from deploy.data.imresize import bicubic_lr
from deploy.data.io_convention import IOConvention


@dataclasses.dataclass(frozen=True)
class CalibrationSet:
    patches: np.ndarray  # float32 NHWC in the model's input convention (zoo: RGB in [0, 1])
    images: tuple[str, ...]
    source: str
    sha256: str = ""  # deploy.provenance.images_sha256 of the HR photos used

    def to_json(self) -> dict:
        return {"source": self.source, "images": list(self.images), "sha256": self.sha256,
                "patches": int(self.patches.shape[0]), "patch_hw": list(self.patches.shape[1:3])}


def calibration_set(scale: int, patch_hw: Sequence[int], *, calib_dir: Optional[str | Path] = None,
                    n_images: int = 8, patches_per_image: int = 4, seed: int = 0,
                    convention: IOConvention = IOConvention()) -> CalibrationSet:
    """LR patches of the model's input size from `calib_dir` (HR photos) or the default set."""
    if calib_dir:
        files = data.image_files(data.require_folder(calib_dir, "calibration folder"))[:n_images]
        source = str(calib_dir)
    else:
        files = shipped.files("calibration")[:n_images]
        source = shipped.source_label("calibration")
    hrs = [(p.stem, data.load_image(p)) for p in files]
    lrs = [(name, bicubic_lr(hr, scale)) for name, hr in hrs]
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
    return CalibrationSet(patches, tuple(n for n, _ in lrs), source, images_sha256(hrs))
