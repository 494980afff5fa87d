"""The standard SR test sets (Set5, Set14, B100, Urban100), read from a folder the user supplies.

Papers report PSNR on these four sets, so the model card does too; but their licences are unclear
or research-only, so srdeploy never ships or downloads them (models/DATA.md says where public
copies are). Layout: `DIR/Set5/`, `DIR/Set14/`, `DIR/B100/` (or `BSD100`, `BSDS100`),
`DIR/Urban100/`, each holding the HR images (PNG/BMP/...). Reading is pure: no network, and the
protocol is the one every result here uses (HR cropped to a multiple of the scale, MATLAB bicubic
LR, Y of BT.601, `scale` pixels shaved; deploy/data/images.make_samples). Each image's file
sha256 is recorded, so a number in the card names the exact pixels it was measured on; a folder
whose image count or Set5 names differ from the published sets is read but marked non-standard.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Sequence

from deploy.data import images

SETS = ("Set5", "Set14", "B100", "Urban100")
#: Other names the same set goes by in public copies (checked after the canonical one).
ALIASES = {"B100": ("BSD100", "BSDS100"), "Urban100": ("urban100",), "Set5": ("set5",), "Set14": ("set14",)}
#: Images in the published sets: a folder with another count is not the standard set.
STANDARD_COUNT = {"Set5": 5, "Set14": 14, "B100": 100, "Urban100": 100}
SET5_NAMES = ("baby", "bird", "butterfly", "head", "woman")


@dataclasses.dataclass(frozen=True)
class BenchmarkSet:
    """One test set on disk: its files and their sha256, in name order."""
    name: str
    folder: Path
    files: tuple[Path, ...]
    sha256: tuple[str, ...]

    @property
    def standard(self) -> bool:
        """True if the folder has the published set's image count (and, for Set5, its names)."""
        if len(self.files) != STANDARD_COUNT.get(self.name, -1):
            return False
        return self.name != "Set5" or tuple(p.stem for p in self.files) == SET5_NAMES

    def manifest(self) -> str:
        """`sha256  file name` per image, the form `sha256sum` prints (so users can check a copy)."""
        return "".join(f"{h}  {p.name}\n" for p, h in zip(self.files, self.sha256))

    @property
    def manifest_sha256(self) -> str:
        """One hash for the whole set: a changed, added or removed image changes it."""
        return hashlib.sha256(self.manifest().encode()).hexdigest()

    def samples(self, scale: int) -> list[images.Sample]:
        """HR/LR pairs at `scale` (modcrop + MATLAB bicubic), named by file stem."""
        return images.make_samples([(p.stem, images.load_image(p)) for p in self.files], scale)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder), "standard": self.standard,
                "n_images": len(self.files), "manifest_sha256": self.manifest_sha256,
                "images": [{"file": p.name, "sha256": h} for p, h in zip(self.files, self.sha256)]}


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def set_folder(root: str | Path, name: str) -> Path:
    """`root/<name>` or one of its aliases; one-line MissingDataError with the layout otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise images.MissingDataError(f"benchmark folder {root} does not exist; lay it out as "
                                    f"{root}/{{{','.join(SETS)}}}/<HR images> (models/DATA.md says where to get them)")
    for candidate in (name, *ALIASES.get(name, ())):
        if (root / candidate).is_dir():
            return root / candidate
    raise images.MissingDataError(f"{root} has no {name}/ folder (expected {root}/{name}/<HR images>; "
                                "models/DATA.md says where to get the set)")


def read_set(root: str | Path, name: str) -> BenchmarkSet:
    """The set `name` under `root`: its image files (any format images.py reads) and their sha256."""
    if name not in SETS:
        raise images.DataError(f"unknown benchmark set {name!r}; known: {', '.join(SETS)}")
    folder = set_folder(root, name)
    files = tuple(images.image_files(folder))
    return BenchmarkSet(name, folder, files, tuple(_file_sha256(p) for p in files))


def read_sets(root: str | Path, names: Sequence[str] = SETS) -> list[BenchmarkSet]:
    """Every requested set under `root` (all must be there: a missing one is an error, never skipped)."""
    return [read_set(root, n) for n in names]
