"""What `tools/prepare_data.py` does besides building the shipped set: install the full-size
Debian photos. The library only names the packages (deploy.data.images.DEBIAN_PACKAGES); this
CLI glue is the one place that runs a package manager (with sudo where not root), because the
user asked it to."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deploy.data import images
from deploy.errors import MissingDataError


def install_full_size_photos() -> tuple[list[Path], list[Path]]:
    """apt-get install the Debian photo packages (if missing); returns (train, validation) of the
    full-size set. Only for `--train_set full`: every default uses the shipped photos."""
    try:
        return images.full_size_photos()
    except MissingDataError:
        pass
    if shutil.which("apt-get") is None:
        raise MissingDataError("apt-get not found: install the Debian packages "
                               f"{' '.join(images.DEBIAN_PACKAGES)} by hand, or train on the shipped photos")
    sudo = [] if hasattr(os, "geteuid") and os.geteuid() == 0 else ["sudo"]
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *images.DEBIAN_PACKAGES]):
        proc = subprocess.run(sudo + cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise MissingDataError(f"`{' '.join(sudo + cmd)}` failed: {last}")
    return images.full_size_photos()
