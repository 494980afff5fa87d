"""The shipped photo set (deploy/data/shipped.py) built from Debian's wallpaper packages.

Why a library module: the set every default reads is data the library defines (which photo goes
to which split, how it is shrunk, its licence), so it is built here, deterministically (the same
packages give byte-identical files); `tools/prepare_data.py --make_shipped_set` only calls
`make_shipped_set`. Maintainers only: nothing at run time needs the packages.
"""
from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

from deploy.data import images, shipped
from deploy.data.images import DEBIAN_PHOTO_DIRS
from deploy.errors import MissingDataError

#: Longer side after downscaling, before the crop to a multiple of 12 (HR = scale x LR exactly at
#: x2, x3 and x4 without modcrop): 1020 px. Small enough that the set is a few MB, large enough for
#: 64x64 LR patches at x4 and real texture (downscaling 3-5K wallpapers sharpens them).
LONG_SIDE = 1024
MULTIPLE = 12
JPEG = {"quality": 90, "subsampling": 0, "optimize": True}  # 4:4:4 keeps chroma detail

LOMIRI, MATE = "lomiri-wallpapers-16.04", "mate-backgrounds"
_L, _M = DEBIAN_PHOTO_DIRS
#: (split, package, original, licence (SPDX), author). Split once, by file: validation keeps the
#: SR training's held-out pair (free_by_Peter_Nerlich: smooth; Dune: fine grass) plus detailed
#: (life, YellowFlower) and smooth bokeh (TwoWings) content; calibration is the first eight
#: lomiri photos (what calibration used before), disjoint from validation. Left out:
#: umang_by_Abhishek_Mudgal (a synthetic colour gradient, not a photo). Evaluation images
#: (scikit-image, matplotlib) are never among these.
SHIPPED = (
    ("calibration", LOMIRI, _L / "Bridge_by_Sander_Klootwijk.jpg", "CC-BY-SA-4.0", "Sander Klootwijk, 2018"),
    ("calibration", LOMIRI, _L / "Dragonfly_by_Bolly.jpg", "CC-BY-SA-4.0", '"Bolly", 2018'),
    ("calibration", LOMIRI, _L / "Picture_0B_by_freespace.jpg", "CC-BY-4.0", 'Trevor "Freespace", 2018'),
    ("calibration", LOMIRI, _L / "Picture_1A_by_freespace.jpg", "CC-BY-4.0", 'Trevor "Freespace", 2018'),
    ("calibration", LOMIRI, _L / "Wine_by_Jakkub_Mede.jpg", "CC-BY-4.0", "Jakub Mede, 2018"),
    ("calibration", LOMIRI, _L / "aitzgorri_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("calibration", LOMIRI, _L / "analogpattern_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", "Peter Nerlich, 2018"),
    ("calibration", LOMIRI, _L / "friends_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("validation", LOMIRI, _L / "free_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", "Peter Nerlich, 2018"),
    ("validation", MATE, _M / "Dune.jpg", "GPL-2.0-or-later", "Marco Cogoni, 2007; Hylke Bons, 2008"),
    ("validation", LOMIRI, _L / "life_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("validation", MATE, _M / "YellowFlower.jpg", "GPL-2.0-or-later", "Charles Barbin, 2008"),
    ("validation", MATE, _M / "TwoWings.jpg", "GPL-2.0-or-later", "Charles Barbin, 2008; Hylke Bons, 2008"),
    ("training", LOMIRI, _L / "greentock_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", "Peter Nerlich, 2018"),
    ("training", LOMIRI, _L / "picosdeeuropa_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("training", LOMIRI, _L / "seeding_by_Clements_Engelhardt.jpg", "CC0-1.0", "Clemens Engelhardt, 2018"),
    ("training", LOMIRI, _L / "sunset_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("training", MATE, _M / "Aqua.jpg", "GPL-2.0-or-later", "Charles Barbin, 2008"),
    ("training", MATE, _M / "Blinds.jpg", "GPL-2.0-or-later", "Lennart Poettering, 2008; Andrea Cimitan, 2008"),
    ("training", MATE, _M / "FreshFlower.jpg", "GPL-2.0-or-later", "Jens Ansorg, 2005"),
    ("training", MATE, _M / "Garden.jpg", "GPL-2.0-or-later", "Charles Barbin, 2008"),
    ("training", MATE, _M / "GreenMeadow.jpg", "GPL-2.0-or-later", "Timothy Schellhase, 2005; Lapo Calamandrei, 2008"),
    ("training", MATE, _M / "LadyBird.jpg", "GPL-2.0-or-later", "Charles Barbin, 2008"),
    ("training", MATE, _M / "RainDrops.jpg", "GPL-2.0-or-later", '"blackcombwhistler07", 2008'),
    ("training", MATE, _M / "Storm.jpg", "GPL-2.0-or-later", "Sergey Nazarov, 2008"),
    ("training", MATE, _M / "Wood.jpg", "GPL-2.0-or-later", "Jean-François Fortin Tam, 2008"),
)


def _package_version(package: str) -> str:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def shrink(img):
    """MATLAB-bicubic downscale to LONG_SIDE, then a centre crop to multiples of MULTIPLE."""
    from deploy.data.imresize import imresize
    h, w = img.shape[:2]
    s = LONG_SIDE / max(h, w)
    if s < 1:
        img = imresize(img, output_shape=(round(h * s), round(w * s)))
    h, w = img.shape[:2]
    ch, cw = h - h % MULTIPLE, w - w % MULTIPLE
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top:top + ch, left:left + cw]


def make_shipped_set(out_dir: str | Path) -> dict:
    """Write the shipped photos and MANIFEST.json under `out_dir`; returns the manifest."""
    out_dir = Path(out_dir)
    from PIL import Image

    from deploy._files import atomic_write, sha256_bytes, sha256_file
    missing = [str(orig) for _, _, orig, _, _ in SHIPPED if not orig.is_file()]
    if missing:
        raise MissingDataError(f"{missing[0]} (and {len(missing) - 1} more) not installed; run "
                               "`python tools/prepare_data.py` first", file=missing[0])
    eval_names = set(images.EVAL_IMAGES)
    versions = {p: _package_version(p) for p in (LOMIRI, MATE)}
    photos = []
    for split, package, orig, licence, author in SHIPPED:
        assert orig.stem not in eval_names and split in shipped.SPLITS
        img = shrink(images.load_image(orig))
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", **JPEG)
        rel = f"{split}/{orig.stem}.jpg"
        atomic_write(out_dir / rel, buf.getvalue())
        photos.append({"name": orig.stem, "split": split, "file": rel, "width": img.shape[1],
                       "height": img.shape[0], "sha256": sha256_bytes(buf.getvalue()),
                       "licence": licence, "author": author, "package": package,
                       "package_version": versions[package], "original": str(orig),
                       "original_sha256": sha256_file(orig)})
    for split in shipped.SPLITS:  # nothing stale left behind
        keep = {p["file"] for p in photos}
        for f in sorted((out_dir / split).glob("*")):
            if f"{split}/{f.name}" not in keep:
                f.unlink()
    manifest = {
        "about": "Default calibration / validation / training photos of srdeploy; licences and "
                 "attribution in models/DATA.md. Each file is a modified (downscaled, cropped, "
                 "re-encoded) version of the original named here, under the original's licence.",
        "made_by": "python tools/prepare_data.py --make_shipped_set",
        "processing": {"resize": "MATLAB-compatible bicubic, antialiased (deploy.data.imresize)",
                       "long_side": LONG_SIDE, "crop_to_multiple_of": MULTIPLE,
                       "jpeg_quality": JPEG["quality"], "chroma_subsampling": "4:4:4"},
        "photos": photos,
    }
    atomic_write(out_dir / "MANIFEST.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest
