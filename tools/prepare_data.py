"""Full-size training photos, and the shipped default set made from them.

    python tools/prepare_data.py                     # apt-get install the full-size originals
    python tools/train.py --train_set full ...       # then train on them

Nothing else needs this: calibration, the search's validation and training use the photos that
ship with srdeploy (deploy/data/photos, same on every machine). The Debian packages
lomiri-wallpapers-16.04 and mate-backgrounds (needs root / sudo) hold their full-size originals
(up to 5312x2988), for users who want the full-size training set.

    python tools/prepare_data.py --make_shipped_set  # maintainers: rebuild deploy/data/photos

rebuilds the shipped set and its MANIFEST.json from the installed packages (deterministic: the
same packages give byte-identical files). Licences: models/DATA.md.
"""
from __future__ import annotations

from pathlib import Path

from absl import flags

from deploy.commands import data_jobs
from deploy.commands.cli import run_cli
from deploy.data.shipped_build import make_shipped_set

FLAGS = flags.FLAGS
flags.DEFINE_bool("make_shipped_set", False, "rebuild deploy/data/photos + MANIFEST.json from the "
                  "installed Debian packages (maintainers)")
flags.DEFINE_string("shipped_dir", None, "with --make_shipped_set: write here instead of "
                    "deploy/data/photos (to compare)")

def main(argv):
    del argv
    if FLAGS.make_shipped_set:
        from deploy.data import shipped
        out = Path(FLAGS.shipped_dir) if FLAGS.shipped_dir else shipped.PHOTOS_DIR
        m = run_cli(lambda: make_shipped_set(out))
        size = sum((out / p["file"]).stat().st_size for p in m["photos"])
        counts = {s: sum(p["split"] == s for p in m["photos"]) for s in shipped.SPLITS}
        print(f"wrote {len(m['photos'])} photos ({size / 1e6:.1f} MB) to {out}: "
              + ", ".join(f"{n} {s}" for s, n in counts.items()))
        return
    train, val = run_cli(data_jobs.install_full_size_photos)
    print(f"full-size set: {len(train)} training photos, {len(val)} validation photos "
          f"({', '.join(p.stem for p in val)}); train on it with `python tools/train.py --train_set full`")


if __name__ == "__main__":
    from deploy.commands import flag_checks
    flag_checks.main(main)
