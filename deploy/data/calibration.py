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

from deploy.data import images as image_io
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
    mirrored: tuple[str, ...] = ()  # photos whose LR was smaller than the input, mirrored out to it

    def to_json(self) -> dict:
        return {"source": self.source, "images": list(self.images), "sha256": self.sha256,
                "patches": int(self.patches.shape[0]), "patch_hw": list(self.patches.shape[1:3]),
                **({"mirrored_to_input_size": list(self.mirrored)} if self.mirrored else {})}


def check_count(folder: Optional[str | Path], n_images: int, what: str = "calib_images",
                split: str = "calibration") -> int:
    """How many photos a folder (or the shipped `split`) holds; DataError when `n_images` asks for
    more (silently using fewer would make the result depend on something the user did not ask)."""
    if folder:
        have, where = len(image_io.image_files(image_io.require_folder(folder, f"{split} folder"))), str(folder)
    else:
        have, where = len(shipped.names(split)), f"the shipped {split} set"
    if n_images > have:
        raise image_io.DataError(f"{what} {n_images}: {where} has {have} images; pass at most {have}"
                             + ("" if folder else " or a folder with more photos"))
    return have


#: A photo's LR side may be smaller than a frame-sized model input (a 1020 px photo is 340 px at x3,
#: a 640x360 input is not): it is then mirrored out to the input size (`mirror_to`). Activation ranges
#: are a property of the image content, not of the input size, and a mirrored photo holds only its
#: own pixels. Below this many LR pixels a side there is too little content to calibrate on.
MIN_LR_SIDE = 48


def mirror_to(lr: np.ndarray, h: int, w: int) -> np.ndarray:
    """`lr` extended to at least h x w by symmetric (mirror) padding, repeated for large factors."""
    while lr.shape[0] < h or lr.shape[1] < w:
        dh, dw = max(0, min(h - lr.shape[0], lr.shape[0])), max(0, min(w - lr.shape[1], lr.shape[1]))
        lr = np.pad(lr, ((0, dh), (0, dw), (0, 0)), mode="symmetric")
    return lr


def calibration_set(scale: int, patch_hw: Sequence[int], *, calib_dir: Optional[str | Path] = None,
                    n_images: int = 8, patches_per_image: int = 4, seed: int = 0,
                    convention: IOConvention = IOConvention()) -> CalibrationSet:
    """LR patches of the model's input size from `calib_dir` (HR photos) or the default set; photos
    smaller than a frame-sized input are mirrored out to it (MIN_LR_SIDE, `mirror_to`)."""
    if calib_dir:
        files = image_io.image_files(image_io.require_folder(calib_dir, "calibration folder"))[:n_images]
        source = str(calib_dir)
    else:
        files = shipped.files("calibration")[:n_images]
        source = shipped.source_label("calibration")
    hrs = [(p.stem, image_io.load_image(p)) for p in files]
    ph, pw = int(patch_hw[0]), int(patch_hw[1])
    need_h, need_w = min(ph, MIN_LR_SIDE), min(pw, MIN_LR_SIDE)
    for name, hr in hrs:  # before the resize: a 1x1 photo has no LR at all
        h, w = hr.shape[:2]
        if h // scale < need_h or w // scale < need_w:
            raise image_io.DataError(f"calibration image {name} ({w}x{h}) is too small: at x{scale} it must be at least "
                                 f"{need_w * scale}x{need_h * scale} ({need_w}x{need_h} in LR); remove it")
    lrs = [(name, bicubic_lr(hr, scale)) for name, hr in hrs]
    rng = np.random.default_rng(seed)
    out = []
    mirrored = tuple(name for name, lr in lrs if lr.shape[0] < ph or lr.shape[1] < pw)
    for name, lr in lrs:
        lr = mirror_to(lr, ph, pw)
        h, w = lr.shape[:2]
        # a photo just the input's size (a frame-sized input) has one crop: more would repeat it
        for _ in range(1 if (h, w) == (ph, pw) else patches_per_image):
            y, x = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
            out.append(lr[y:y + ph, x:x + pw])
    patches = convention.model_input(np.stack(out).astype(np.float32) / 255.0)
    return CalibrationSet(patches, tuple(n for n, _ in lrs), source, images_sha256(hrs), mirrored)
