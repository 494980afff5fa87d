"""The default photos ship with the project: every default path reads them, on every machine
(with or without the Debian photo packages), and a missing source is one clear error, never a
silent substitute."""
import hashlib
import json
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deploy.data import calibration, shipped
from deploy.data import images
from deploy.errors import SrdeployError
from deploy.policy_search import oracle
from tests.conftest import REPO, run_tool

ALLOWED_LICENCES = {"CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "GPL-2.0-or-later"}


def test_manifest_lists_every_shipped_photo_with_licence_and_hash():
    photos = shipped.manifest()["photos"]
    assert len(photos) == 26
    on_disk = sorted(p.relative_to(shipped.PHOTOS_DIR).as_posix() for p in shipped.PHOTOS_DIR.glob("*/*.jpg"))
    assert on_disk == sorted(p["file"] for p in photos)
    total = 0
    for p in photos:
        f = shipped.PHOTOS_DIR / p["file"]
        assert hashlib.sha256(f.read_bytes()).hexdigest() == p["sha256"]
        assert p["licence"] in ALLOWED_LICENCES and p["author"] and p["original"]
        assert p["package"] in images.DEBIAN_PACKAGES
        with Image.open(f) as im:
            assert im.size == (p["width"], p["height"]) and im.mode == "RGB"
        assert max(p["width"], p["height"]) == 1020 and p["width"] % 12 == 0 and p["height"] % 12 == 0
        total += f.stat().st_size
    assert total < 6e6  # a few MB in all


def test_splits_are_disjoint_and_never_the_evaluation_images():
    names = {s: set(shipped.names(s)) for s in shipped.SPLITS}
    assert [len(names[s]) for s in shipped.SPLITS] == [8, 5, 13]
    assert not names["calibration"] & names["validation"]
    assert not names["training"] & (names["validation"] | names["calibration"])
    assert {"free_by_Peter_Nerlich", "Dune"} <= names["validation"]
    everything = set().union(*names.values())
    assert not everything & set(images.EVAL_IMAGES)
    models_md = (REPO / "models" / "DATA.md").read_text()
    for name in everything:  # every photo is attributed
        assert name in models_md, name


def test_photos_are_package_data():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["deploy.data"]
    assert "photos/*/*.jpg" in globs and "photos/MANIFEST.json" in globs


def test_photos_have_texture_for_sr():
    """Natural photos, not placeholders; downscaling kept (and sharpened) their detail."""
    detail = []
    for split in shipped.SPLITS:
        for p in shipped.files(split):
            g = images.load_image(p).astype(np.float32).mean(-1)
            assert g.std() > 10, p
            detail.append(float(np.abs(np.diff(g, axis=1)).mean()))
    assert np.median(detail) > 1.5 and max(detail) > 10


@pytest.fixture
def other_debian_photos(tmp_path, monkeypatch):
    """A machine whose Debian photo folders hold other images: defaults must not notice."""
    d = tmp_path / "backgrounds"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name in ("Bridge_by_Sander_Klootwijk", "free_by_Peter_Nerlich", "Dune", "Aqua"):
        Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(d / f"{name}.jpg")
    monkeypatch.setattr(images, "DEBIAN_PHOTO_DIRS", (d,))
    return d


def _calib():
    return calibration.calibration_set(3, (48, 48))


def _val():
    return oracle.validation_set(3, (48, 48))


def test_calibration_uses_the_shipped_photos_on_any_machine(monkeypatch, other_debian_photos):
    with_other = _calib()
    monkeypatch.setattr(images, "DEBIAN_PHOTO_DIRS", (other_debian_photos / "none",))
    without = _calib()
    assert with_other.source == without.source == "shipped:calibration"
    assert list(with_other.images) == list(without.images) == shipped.names("calibration")
    assert with_other.sha256 == without.sha256 and len(with_other.sha256) == 64
    np.testing.assert_array_equal(with_other.patches, without.patches)
    assert with_other.to_json()["sha256"] == with_other.sha256


def test_validation_uses_the_shipped_photos_on_any_machine(monkeypatch, other_debian_photos):
    with_other = _val()
    monkeypatch.setattr(images, "DEBIAN_PHOTO_DIRS", (other_debian_photos / "none",))
    without = _val()
    assert with_other.source == without.source == "shipped:validation"
    assert list(with_other.images) == list(without.images) == shipped.names("validation")
    assert with_other.sha256 == without.sha256
    for a, b in zip(with_other.lr + with_other.hr, without.lr + without.hr):
        np.testing.assert_array_equal(a, b)
    assert set(with_other.images).isdisjoint(_calib().images)


def test_training_default_is_the_shipped_photos(monkeypatch, other_debian_photos):
    train, val, source = images.training_photos()
    assert source == "shipped:training+calibration"
    assert [p.stem for p in train] == shipped.names("training") + shipped.names("calibration")
    assert [p.stem for p in val] == shipped.names("validation")
    assert all(p.is_relative_to(shipped.PHOTOS_DIR) for p in train + val)


def test_missing_sources_are_one_line_errors(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    cases = [
        (lambda: calibration.calibration_set(3, (48, 48), calib_dir=missing), "calibration folder"),
        (lambda: oracle.validation_set(3, (48, 48), val_dir=missing), "validation folder"),
        (lambda: images.training_photos(missing), "training folder"),
    ]
    for call, what in cases:
        with pytest.raises(images.MissingDataError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith(f"{what} {missing} does not exist") and "\n" not in msg
    monkeypatch.setattr(images, "DEBIAN_PHOTO_DIRS", (missing,))
    with pytest.raises(images.MissingDataError, match="full-size Debian photos are not installed.*"
                                                     "tools/prepare_data.py") as e:
        images.training_photos(full_size=True)
    # the library names what to install; only tools/prepare_data.py words (and runs) a command
    assert e.value.value == images.DEBIAN_PACKAGES and "sudo" not in str(e.value)
    assert all(p in str(e.value) for p in images.DEBIAN_PACKAGES)


def test_data_errors_are_library_errors():
    assert issubclass(images.DataError, SrdeployError) and issubclass(images.DataError, ValueError)
    assert issubclass(images.MissingDataError, images.DataError)


def test_altered_or_missing_shipped_photo_is_an_error(tmp_path, monkeypatch):
    copy = tmp_path / "photos"
    shutil.copytree(shipped.PHOTOS_DIR, copy)
    monkeypatch.setattr(shipped, "PHOTOS_DIR", copy)
    first = copy / shipped.manifest()["photos"][0]["file"]
    first.write_bytes(first.read_bytes()[:-10])
    with pytest.raises(images.DataError, match="differs from MANIFEST.json"):
        calibration.calibration_set(3, (48, 48))
    first.unlink()
    with pytest.raises(images.MissingDataError, match="is missing; reinstall srdeploy"):
        calibration.calibration_set(3, (48, 48))


def test_no_fallback_images_anywhere_in_the_code():
    pattern = re.compile(r"immunohistochemistry|hubble|retina", re.I)
    hits = [f"{p.relative_to(REPO)}:{i}" for top in ("deploy", "tools", "bench", "models")
            for p in (REPO / top).rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


@pytest.mark.slow
def test_missing_calib_dir_on_the_command_line_is_one_line(tmp_path):
    r = run_tool("convert", "--model", "espcn", "--scale", "2", "--precision", "int8", "--input_size", "24x24",
                 "--calib_dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.tflite"))
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(err) == 1 and err[0].startswith(f"error: calibration folder {tmp_path / 'nowhere'} "
                                               "does not exist"), r.stderr
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.slow
@pytest.mark.skipif(not all(Path(p).is_file() for p in (
        "/usr/share/backgrounds/free_by_Peter_Nerlich.jpg", "/usr/share/backgrounds/mate/nature/Dune.jpg")),
        reason="needs the Debian photo packages (python tools/prepare_data.py)")
def test_shipped_set_is_reproducible_from_the_debian_packages(tmp_path):
    r = run_tool("prepare_data", "--make_shipped_set", "--shipped_dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    made = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert [(p["file"], p["sha256"]) for p in made["photos"]] == \
        [(p["file"], p["sha256"]) for p in shipped.manifest()["photos"]]
