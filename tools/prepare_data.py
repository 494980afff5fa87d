"""Install the default training photos: `python tools/prepare_data.py` (Debian/Ubuntu, root).

Installs the Debian packages lomiri-wallpapers-16.04 and mate-backgrounds with apt-get and lists
what training will use. Licences: models/DATA.md.
"""
from absl import app

from deploy.data import images as data
from deploy.commands.cli import run_cli


def main(argv):
    del argv
    files = run_cli(data.install_train_photos)
    train, val = data.split_train_val(files)
    print(f"{len(train)} training photos, {len(val)} validation photos "
          f"({', '.join(p.stem for p in val)}) in {', '.join(map(str, data.TRAIN_DIRS))}")


if __name__ == "__main__":
    app.run(main)
