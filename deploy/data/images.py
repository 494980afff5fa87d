"""Images for training, calibration and evaluation: real photos only.

Convention everywhere: HR and LR images are uint8 RGB, HWC. A folder loader accepts PNG/JPEG/
BMP/TIFF/WebP, 8- or 16-bit, grey/RGB/RGBA/palette, so a user's DIV2K or Set5 works unchanged.
Default sets (licences in models/DATA.md):
  - evaluation: photos bundled with scikit-image and matplotlib, centre-cropped to 240x240
    (divisible by 2, 3 and 4) so A16W8 reference kernels finish in reasonable time;
  - training: Debian's lomiri-wallpapers-16.04 and mate-backgrounds photos
    (`python tools/prepare_data.py` installs them). The two sets never overlap.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from deploy.data.imresize import bicubic_lr, modcrop

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
EVAL_CROP = 240
EVAL_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "grace_hopper")
TRAIN_DIRS = (Path("/usr/share/backgrounds"), Path("/usr/share/backgrounds/mate/nature"))
#: Held out of training, used for validation PSNR while training (never the eval set).
VAL_NAMES = ("free_by_Peter_Nerlich", "Dune")
CACHE_DIR = Path(__file__).resolve().parents[2] / "data_cache"


class DataError(ValueError):
    """An image or folder that cannot be used; the message says which file and what to do."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One evaluation image: HR ground truth and its MATLAB-bicubic LR."""
    name: str
    hr: np.ndarray
    lr: np.ndarray


def to_rgb8(arr: np.ndarray, name: str = "image") -> np.ndarray:
    """Any decoded image array -> uint8 RGB HWC (16-bit scaled, alpha dropped, grey tripled)."""
    a = np.asarray(arr)
    if a.dtype == np.uint16 or (a.dtype.kind in "iu" and a.max(initial=0) > 255):
        a = np.round(a.astype(np.float64) / 257.0)
    elif a.dtype.kind == "f":
        a = np.round(np.clip(a, 0, 1) * 255.0) if a.max(initial=0) <= 1.0 else a
    a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4):
        raise DataError(f"{name}: unsupported image layout {a.shape}; expected HxW or HxWxC")
    if a.shape[-1] in (1, 2):  # grey (+alpha)
        a = np.repeat(a[..., :1], 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def load_image(path: str | Path) -> np.ndarray:
    """Read one image file as uint8 RGB; DataError (one line) when it cannot be read.

    16-bit greys are scaled exactly; Pillow reduces 48-bit RGB PNGs to their high byte (at most
    1 LSB from exact rounding), which is below what any 8-bit SR pipeline resolves.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.array(im, dtype=np.uint16 if im.mode.startswith("I;16") else np.int64)
            elif im.mode in ("RGB", "L", "RGBA", "LA"):
                arr = np.array(im)
            else:
                arr = np.array(im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB"))
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"cannot read image {path}: {e.__class__.__name__}: {e}; "
                        "expected a PNG/JPEG/BMP/TIFF/WebP file") from None
    return to_rgb8(arr, str(path))


def image_files(folder: str | Path) -> list[Path]:
    """Image files in a folder (sorted). Non-image files are an error, not silently skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist or is not a folder")
    files, others = [], []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        (files if p.suffix.lower() in IMAGE_SUFFIXES else others).append(p)
    if others:
        raise DataError(f"{others[0]} in {folder} is not an image (allowed: "
                        f"{', '.join(sorted(IMAGE_SUFFIXES))}); move it out of the folder")
    if not files:
        raise DataError(f"no images in {folder}; expected PNG/JPEG files")
    return files


def load_folder(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    return [(p.stem, load_image(p)) for p in image_files(folder)]


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    size_h, size_w = min(size, h), min(size, w)
    top, left = (h - size_h) // 2, (w - size_w) // 2
    return img[top:top + size_h, left:left + size_w]


def textured_crop(img: np.ndarray, size: int, stride: int = 64) -> np.ndarray:
    """The size x size window with the most detail (mean |gradient|): flat sky says little."""
    h, w = img.shape[:2]
    if h <= size and w <= size:
        return img
    g = img.astype(np.float32).mean(axis=-1)
    energy = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1, :]
    best, best_yx = -1.0, (0, 0)
    for y in range(0, max(1, h - size + 1), stride):
        for x in range(0, max(1, w - size + 1), stride):
            e = float(energy[y:y + size, x:x + size].mean())
            if e > best:
                best, best_yx = e, (y, x)
    y, x = best_yx
    return img[y:y + size, x:x + size]


def default_eval_images() -> list[tuple[str, np.ndarray]]:
    """The default evaluation HR set: bundled photos, centre 240x240 crops."""
    import skimage.data
    from matplotlib import cbook
    out = []
    for name in EVAL_IMAGES:
        if name == "grace_hopper":
            with cbook.get_sample_data("grace_hopper.jpg") as f:
                img = np.array(Image.open(f).convert("RGB"))
        else:
            img = getattr(skimage.data, name)()
        out.append((name, center_crop(to_rgb8(img, name), EVAL_CROP)))
    return out


def make_samples(images: Iterable[tuple[str, np.ndarray]], scale: int) -> list[Sample]:
    """HR/LR pairs with modcrop; images smaller than 2 LR pixels are refused."""
    samples = []
    for name, hr in images:
        hr = modcrop(hr, scale)
        if min(hr.shape[:2]) < 2 * scale:
            raise DataError(f"image {name} ({hr.shape[1]}x{hr.shape[0]}) is too small for x{scale}")
        samples.append(Sample(name, hr, bicubic_lr(hr, scale)))
    return samples


def eval_samples(scale: int, data_dir: str | Path | None = None) -> list[Sample]:
    """Evaluation pairs from `data_dir` (any HR folder) or the default set."""
    images = load_folder(data_dir) if data_dir else default_eval_images()
    return make_samples(images, scale)


def train_files(dirs: Sequence[Path] = TRAIN_DIRS) -> list[Path]:
    """Default training photos; DataError with the install command when they are missing."""
    files = []
    for d in dirs:
        if d.is_dir():
            files += [p for p in sorted(d.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg")]
    if not files:
        raise DataError("default training photos are not installed; run "
                        "`python tools/prepare_data.py` (Debian packages lomiri-wallpapers-16.04 "
                        "and mate-backgrounds), or pass --train_dir DIR")
    eval_names = set(EVAL_IMAGES)
    return [p for p in files if p.stem not in eval_names]


def split_train_val(files: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    val = [p for p in files if p.stem in VAL_NAMES]
    train = [p for p in files if p.stem not in VAL_NAMES]
    if not val:  # a user's folder: hold out the last image
        train, val = list(files[:-1]), list(files[-1:])
    return train, val


def cached_pair(path: Path, scale: int, cache_dir: Path = CACHE_DIR) -> tuple[np.ndarray, np.ndarray]:
    """(HR modcropped, LR) for a training photo; LR cached as .npy keyed by content hash."""
    hr = modcrop(load_image(path), scale)
    key = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    cache = cache_dir / f"lr_x{scale}" / f"{path.stem}-{key}.npy"
    if cache.is_file():
        lr = np.load(cache)
    else:
        lr = bicubic_lr(hr, scale)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, lr)
    return hr, lr



TRAIN_PACKAGES = ("lomiri-wallpapers-16.04", "mate-backgrounds")


def install_train_photos() -> list[Path]:
    """apt-get install the Debian photo packages (if missing); returns the training files."""
    import shutil
    import subprocess
    try:
        return train_files()
    except DataError:
        pass
    if shutil.which("apt-get") is None:
        raise DataError("apt-get not found: install the Debian packages "
                        f"{' '.join(TRAIN_PACKAGES)} by hand, or train with --train_dir DIR")
    sudo = [] if _is_root() else ["sudo"]
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *TRAIN_PACKAGES]):
        proc = subprocess.run(sudo + cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise DataError(f"`{' '.join(sudo + cmd)}` failed: {last}")
    return train_files()


def _is_root() -> bool:
    import os
    return hasattr(os, "geteuid") and os.geteuid() == 0
