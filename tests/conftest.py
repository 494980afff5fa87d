"""Shared fixtures: tiny folders of real photos (bundled with scikit-image), kept small so the
whole suite runs on 2 cores in minutes."""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

#: Tests never read or write a user's cache (deploy/cache_dirs.py): every test process (and the
#: tools it runs) gets its own empty one, removed at exit, so a fresh clone and a machine with a
#: warm ~/.cache/srdeploy run the same tests.
_CACHE = tempfile.mkdtemp(prefix="srdeploy-test-cache-")
os.environ["SRDEPLOY_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)


def _skimage_rgb(name: str) -> np.ndarray:
    import skimage.data
    from deploy.data.images import to_rgb8
    return to_rgb8(getattr(skimage.data, name)(), name)


@pytest.fixture(scope="session")
def hr_dir(tmp_path_factory) -> Path:
    """Three real-photo HR crops (96x96) as PNG: a user's own evaluation folder."""
    d = tmp_path_factory.mktemp("hr")
    for name in ("immunohistochemistry", "hubble_deep_field", "retina"):
        img = _skimage_rgb(name)
        h, w = img.shape[:2]
        Image.fromarray(img[h // 2 - 48:h // 2 + 48, w // 2 - 48:w // 2 + 48]).save(d / f"{name}.png")
    return d


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory) -> Path:
    """Small real-photo training folder (not the evaluation images)."""
    d = tmp_path_factory.mktemp("train")
    for name in ("immunohistochemistry", "hubble_deep_field", "retina"):
        img = _skimage_rgb(name)
        Image.fromarray(img[:192, :192]).save(d / f"{name}.png")
    return d


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    """Factory: a .h5 of random (seeded) weights for a zoo model, so tests need no training."""
    import models
    from models._keras import keras
    cache = {}

    def make(name: str, scale: int) -> Path:
        if (name, scale) not in cache:
            keras.utils.set_random_seed(0)
            path = tmp_path_factory.mktemp("w") / f"{name}_x{scale}_random.h5"
            models.build(name, scale).save_weights(str(path))
            cache[(name, scale)] = path
        return cache[(name, scale)]
    return make


@pytest.fixture(scope="session")
def conv_add_prep():
    """The latency tests' hand-priced graph, prepared once: 8x8x3 -> conv 3x3 (16, "c1") -> conv 1x1 (16, "c2"),
    then add(c1, c2) ("add"). Its op work is written out by hand in those tests."""
    from deploy.convert import per_layer
    from models._keras import keras
    keras.utils.set_random_seed(0)
    x_in = keras.Input((8, 8, 3), batch_size=1)
    a = keras.layers.Conv2D(16, 3, padding="same", name="c1")(x_in)
    b = keras.layers.Conv2D(16, 1, name="c2")(a)
    return per_layer.prepare(keras.Model(x_in, keras.layers.Add(name="add")([a, b])))


def run_tool(tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a CLI exactly as a user would: `python tools/<tool>.py ...`."""
    return subprocess.run([sys.executable, str(REPO / "tools" / f"{tool}.py"), *args],
                          capture_output=True, text=True, cwd=cwd or REPO, timeout=600)
