"""The default photos that ship with srdeploy (package data), split once by file.

`deploy/data/photos/{calibration,validation,training}/*.jpg`, listed with origin, licence and
sha256 in `photos/MANIFEST.json` (attribution: models/DATA.md). Made from Debian's
lomiri-wallpapers-16.04 and mate-backgrounds by `python tools/prepare_data.py --make_shipped_set`
(MATLAB-bicubic downscale to a 1020 px longer side, JPEG q90 4:4:4); nothing at run time needs
those packages. Every default path reads these files: calibration (`calibration`), the search's
validation patches (`validation`), SR training (`training` + `calibration`; validation PSNR on
`validation`). So every machine, with or without the Debian packages, uses the same pixels; a
missing or altered photo is an error, never a silent substitute.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

from deploy._files import sha256_file
from deploy.errors import DataError, MissingDataError

PHOTOS_DIR = Path(__file__).resolve().parent / "photos"
MANIFEST_PATH = PHOTOS_DIR / "MANIFEST.json"
SPLITS = ("calibration", "validation", "training")
#: What `tools/train.py` trains on by default (calibration photos are ordinary training photos;
#: validation photos are held out).
TRAIN_SPLITS = ("training", "calibration")

_RESTORE = ("reinstall srdeploy (`pip install -e .`) or restore the files with "
            "`git checkout -- deploy/data/photos`")


@functools.lru_cache(maxsize=1)
def manifest() -> dict:
    """The parsed MANIFEST.json (one entry per shipped photo, in split order)."""
    if not MANIFEST_PATH.is_file():
        raise MissingDataError(f"the shipped photo list {MANIFEST_PATH} is missing; {_RESTORE}")
    return json.loads(MANIFEST_PATH.read_text())


def entries(split: str) -> list[dict]:
    if split not in SPLITS:
        raise DataError(f"unknown photo split '{split}'; choose one of {', '.join(SPLITS)}")
    return [e for e in manifest()["photos"] if e["split"] == split]


def files(split: str, *, verify: bool = True) -> list[Path]:
    """The shipped photos of one split, in manifest order; each checked against its sha256."""
    out = []
    for e in entries(split):
        p = PHOTOS_DIR / e["file"]
        if not p.is_file():
            raise MissingDataError(f"shipped {split} photo {p} is missing; {_RESTORE}")
        if verify and sha256_file(p) != e["sha256"]:
            raise DataError(f"shipped {split} photo {p} differs from MANIFEST.json (sha256); {_RESTORE}")
        out.append(p)
    return out


def names(split: str) -> list[str]:
    return [e["name"] for e in entries(split)]


def source_label(*splits: str) -> str:
    """How results name this data source: `shipped:calibration`, `shipped:training+calibration`."""
    return "shipped:" + "+".join(splits)
