"""Images for training, calibration and evaluation: real photos only.

Convention everywhere: HR and LR images are uint8 RGB, HWC. A folder loader accepts PNG/JPEG/
BMP/TIFF/WebP, 8- or 16-bit, grey/RGB/RGBA/palette, so a user's DIV2K or Set5 works unchanged.
Default sets (licences in models/DATA.md):
  - evaluation: photos bundled with scikit-image and matplotlib, centre-cropped to 240x240
    (divisible by 2, 3 and 4) so A16W8 reference kernels finish in reasonable time;
  - calibration, the search's validation and training: the photos that ship with the project
    (deploy/data/shipped.py: Debian wallpapers downscaled, split once by file), the same on every
    machine; `--train_set full` trains on their full-size originals (`python tools/prepare_data.py`
    installs the Debian packages). Evaluation photos are never among them.
A requested source that is missing is a MissingDataError (one line: which, and how to get it);
no other images are ever substituted.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
import hashlib
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
from PIL import Image, ImageOps

from deploy import cache_dirs
from deploy.data.imresize import bicubic_lr, modcrop

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
EVAL_CROP = 240
EVAL_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "grace_hopper")
#: Where Debian's lomiri-wallpapers-16.04 and mate-backgrounds put the full-size originals.
DEBIAN_PHOTO_DIRS = (Path("/usr/share/backgrounds"), Path("/usr/share/backgrounds/mate/nature"))
DEBIAN_PACKAGES = ("lomiri-wallpapers-16.04", "mate-backgrounds")
#: Held out of training in a user's folder when present (else its last image); the shipped set's
#: validation split starts with these two.
VAL_NAMES = ("free_by_Peter_Nerlich", "Dune")


from deploy.errors import DataError, MissingDataError  # noqa: E402 - re-exported (defined in the one tree)


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


def load_image(path: str | Path, *, orient: bool = False) -> np.ndarray:
    """Read one image file as uint8 RGB; DataError (one line) when it cannot be read.

    `orient`: apply the EXIF orientation (a phone photo upscaled as it is viewed); evaluation
    and calibration keep the stored pixels. 16-bit greys are scaled exactly; Pillow reduces 48-bit RGB PNGs to their high byte (at most
    1 LSB from exact rounding), which is below what any 8-bit SR pipeline resolves.
    """
    path = Path(path)
    try:
        with Image.open(path) as opened:
            im = ImageOps.exif_transpose(opened) if orient else opened  # as a viewer shows it
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


def has_alpha(path: str | Path) -> bool:
    """Whether an image file carries transparency (dropped by load_image: SR is of RGB)."""
    try:
        with Image.open(path) as im:
            return "A" in im.mode or "transparency" in im.info
    except (OSError, ValueError, SyntaxError):
        return False


def image_files(folder: str | Path) -> list[Path]:
    """Image files in a folder (sorted). Non-image files are an error, not silently skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingDataError(f"data folder {folder} does not exist or is not a folder")
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


#: SSIM's Gaussian window (sigma 1.5) is 11 pixels: the scored area (HR minus a `scale`-pixel
#: border on each side) must be at least that on both sides.
SSIM_WINDOW = 11


def min_eval_side(scale: int) -> int:
    """Smallest HR side (after modcrop) an evaluation image may have at this scale."""
    side = 2 * scale + SSIM_WINDOW
    return side + (-side) % scale


def make_samples(images: Iterable[tuple[str, np.ndarray]], scale: int) -> list[Sample]:
    """HR/LR pairs with modcrop; an image too small (or thin) to score is refused by name and its
    own size, never as the (0x0) left after the crop."""
    samples = []
    for name, img in images:
        hr = modcrop(img, scale)
        if min(hr.shape[:2]) < min_eval_side(scale):
            raise DataError(f"image {name} ({img.shape[1]}x{img.shape[0]}) is too small for x{scale}: both sides "
                            f"must be at least {min_eval_side(scale)} pixels (a {scale}-pixel border is shaved, "
                            f"SSIM needs {SSIM_WINDOW}); remove it from the folder")
        samples.append(Sample(name, hr, bicubic_lr(hr, scale)))
    return samples


def eval_samples(scale: int, data_dir: str | Path | None = None) -> list[Sample]:
    """Evaluation pairs from `data_dir` (any HR folder) or the default set."""
    images = load_folder(data_dir) if data_dir else default_eval_images()
    return make_samples(images, scale)


def require_folder(folder: str | Path, what: str) -> Path:
    """`folder` as a Path; MissingDataError naming `what` (e.g. "calibration folder") if absent."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingDataError(f"{what} {folder} does not exist or is not a folder; pass a folder "
                               "of HR photos (PNG/JPEG), or leave it out to use the shipped photos")
    return folder


def full_size_photos(dirs: Optional[Sequence[Path]] = None) -> tuple[list[Path], list[Path]]:
    """(train, validation) full-size originals of the shipped photos, split as the shipped set.

    MissingDataError (naming the packages to install) when the Debian packages are not installed or
    any original is missing: a partial set would silently train on something else."""
    from deploy.data import shipped
    dirs = DEBIAN_PHOTO_DIRS if dirs is None else dirs
    found = {p.stem: p for d in dirs if d.is_dir() for p in sorted(d.iterdir())
             if p.suffix.lower() in (".jpg", ".jpeg")}
    want = {split: shipped.names(split) for split in ("validation", *shipped.TRAIN_SPLITS)}
    missing = [n for names in want.values() for n in names if n not in found]
    if missing:
        raise MissingDataError(
            f"the full-size Debian photos are not installed ({len(missing)} missing, e.g. "
            f"{missing[0]} in {', '.join(map(str, dirs))}); install the Debian packages "
            f"{' and '.join(DEBIAN_PACKAGES)} (or run `python tools/prepare_data.py`), or train on the "
            "shipped photos (the default)", file=dirs[0], value=DEBIAN_PACKAGES)
    train = [found[n] for split in shipped.TRAIN_SPLITS for n in want[split]]
    return train, [found[n] for n in want["validation"]]


def training_photos(train_dir: Optional[str | Path] = None, *,
                    full_size: bool = False) -> tuple[list[Path], list[Path], str]:
    """(train files, validation files, source label) for SR training and QAT.

    Default: the shipped photos (training + calibration splits; validation split held out).
    `train_dir`: a user's folder (VAL_NAMES or its last image held out). `full_size`: the
    full-size Debian originals of the shipped photos, same split."""
    from deploy.data import shipped
    if train_dir and full_size:
        raise DataError("give either a training folder or the full-size photo set, not both")
    if train_dir:
        train, val = split_train_val(image_files(require_folder(train_dir, "training folder")))
        return train, val, str(train_dir)
    if full_size:
        train, val = full_size_photos()
        return train, val, "debian-full-size:" + "+".join(shipped.TRAIN_SPLITS)
    train = [p for split in shipped.TRAIN_SPLITS for p in shipped.files(split)]
    return train, shipped.files("validation"), shipped.source_label(*shipped.TRAIN_SPLITS)


def split_train_val(files: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    val = [p for p in files if p.stem in VAL_NAMES]
    train = [p for p in files if p.stem not in VAL_NAMES]
    if not val:  # a user's folder: hold out the last image
        train, val = list(files[:-1]), list(files[-1:])
    return train, val


def cached_pair(path: Path, scale: int, cache_dir: Optional[Path] = None) -> tuple[np.ndarray, np.ndarray]:
    """(HR modcropped, LR) for a training photo; LR cached as .npy keyed by content hash, under
    `cache_dir` (default: the user cache, deploy/cache_dirs.py)."""
    if cache_dir is None:
        cache_dir = cache_dirs.user_cache_dir()
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

