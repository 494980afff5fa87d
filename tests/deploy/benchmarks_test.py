"""The standard-benchmark path (`bench/zoo.py --benchmarks DIR`) on a tiny generated stand-in:
the real sets are never shipped, so these tests lay out two small real-photo crops per set under
the published folder names and check reading, hashing, the per-cell cache (resume, pending
cells, invalidation) and the card section."""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deploy.data import benchmarks as bm
from deploy.data import images
from deploy.data.imresize import bicubic_upscale

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from bench import benchmarks  # noqa: E402


@pytest.fixture()
def stand_in(tmp_path) -> Path:
    """root/{Set5,Set14,BSD100,Urban100}/ with two 60x48 real-photo crops each (one greyscale)."""
    import skimage.data
    root = tmp_path / "benchmarks"
    photos = [images.to_rgb8(skimage.data.astronaut()), images.to_rgb8(skimage.data.coffee())]
    for k, folder in enumerate(("Set5", "Set14", "BSD100", "Urban100")):
        (root / folder).mkdir(parents=True)
        for i, img in enumerate(photos):
            crop = img[40 * k:40 * k + 48, 60 * i:60 * i + 60]
            Image.fromarray(crop[..., 0] if (k, i) == (1, 1) else crop).save(root / folder / f"im{i}.png")
    return root


class BicubicRunner:
    """A stand-in 'model' (bicubic) so the cache logic is tested without quantizing anything."""
    def __init__(self, scale):
        self.scale = scale

    def __call__(self, lr):
        return bicubic_upscale(lr, self.scale)


def test_sets_are_read_with_their_sha256_and_marked_non_standard(stand_in):
    sets = bm.read_sets(stand_in)
    assert [s.name for s in sets] == list(bm.SETS) and sets[2].folder.name == "BSD100"  # alias of B100
    s5 = sets[0]
    assert s5.sha256[0] == hashlib.sha256((stand_in / "Set5" / "im0.png").read_bytes()).hexdigest()
    assert s5.manifest().splitlines()[0] == f"{s5.sha256[0]}  im0.png" and not s5.standard
    samples = sets[1].samples(3)
    assert samples[1].hr.shape == (48, 60, 3) and samples[1].lr.shape == (16, 20, 3)  # grey -> RGB
    j = s5.to_json()
    assert j["n_images"] == 2 and j["images"][1]["sha256"] == s5.sha256[1] and j["standard"] is False


def test_missing_and_unknown_sets_are_one_line_errors(stand_in, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(images.MissingDataError, match="has no Set5/ folder"):
        bm.read_sets(tmp_path / "empty")
    with pytest.raises(images.MissingDataError, match="does not exist"):
        bm.read_set(tmp_path / "nowhere", "Set5")
    with pytest.raises(images.DataError, match="unknown benchmark set 'Manga109'"):
        bm.read_set(stand_in, "Manga109")


def test_run_caches_cells_resumes_and_marks_pending(stand_in, tmp_path):
    import models
    from deploy.evaluation.runners import KerasRunner
    weights = models.weights_path("espcn", 3).name
    made = []

    def make_runner(model, scale, precision):
        made.append((model, precision))
        if precision == "float":  # the shipped weight, as bench/zoo.py's float cells run it
            return KerasRunner(models.build(model, scale, weights=True), scale), {}
        return BicubicRunner(scale), {"note": "stand-in"}

    kw = dict(results_dir=tmp_path / "cells", summary=tmp_path / "summary.json", card=None)
    pairs = [("espcn", 3, weights)]
    out = benchmarks.run(stand_in, pairs, ["float", "int8"], make_runner, max_minutes=0, **kw)
    assert len(out["pending"]) == 8 and all(r["model"] == "bicubic" for r in out["rows"])  # 4 sets x 2
    out = benchmarks.run(stand_in, pairs, ["float", "int8"], make_runner, **kw)
    assert not out["pending"] and len(out["rows"]) == 4 + 8 and len(made) == 2  # one runner per precision
    by = {(r["model"], r["precision"], r["set"]): r for r in out["rows"]}
    bic, fake = by[("bicubic", "bicubic", "Set5")], by[("espcn", "int8", "Set5")]
    assert fake["psnr_y"] == pytest.approx(bic["psnr_y"]) and fake["note"] == "stand-in"
    assert by[("espcn", "float", "Set5")]["psnr_y"] > 15 and by[("espcn", "float", "Set5")]["weights"] == weights
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sets"][0]["images"][0]["sha256"] == bm.read_set(stand_in, "Set5").sha256[0]
    assert benchmarks.run(stand_in, pairs, ["float", "int8"], make_runner, **kw)["rows"] == out["rows"]
    assert len(made) == 2  # everything came from the cache
    # a changed image changes the set's manifest: that set's cells are measured again, the others kept
    Image.fromarray(np.zeros((48, 60, 3), np.uint8)).save(stand_in / "Urban100" / "im0.png")
    benchmarks.run(stand_in, pairs, ["float", "int8"], make_runner, **kw)
    assert len(made) == 4


def test_a_cell_made_another_way_is_measured_again(stand_in, tmp_path):
    """`made_by`: an int8 cell whose model came from another route (a new int8 candidate won) is
    measured again; cells whose route is unchanged, and other precisions, come from the cache."""
    route = {"now": "converter"}
    made, asked = [], []

    def make_runner(model, scale, precision):
        made.append(precision)
        return BicubicRunner(scale), ({"int8_route": route["now"]} if precision == "int8" else {})

    def made_by(model, scale, precision):
        asked.append(precision)
        return {"int8_route": route["now"]} if precision == "int8" else {}

    kw = dict(results_dir=tmp_path / "cells", summary=tmp_path / "s.json", card=None, made_by=made_by,
              set_names=["Set5"])
    pairs = [("xlsr", 3, "w.h5")]
    benchmarks.run(stand_in, pairs, ["float", "int8"], make_runner, **kw)
    benchmarks.run(stand_in, pairs, ["float", "int8"], make_runner, **kw)
    assert made == ["float", "int8"] and asked.count("int8") == 1  # asked for a cached cell, once per run
    route["now"] = "per_layer_a8w8_mse"
    out = benchmarks.run(stand_in, pairs, ["float", "int8"], make_runner, **kw)
    assert made == ["float", "int8", "int8"]
    assert {r["int8_route"] for r in out["rows"] if r["precision"] == "int8"} == {"per_layer_a8w8_mse"}


def test_card_section_shows_ours_beside_the_paper_and_pending_cells(stand_in, tmp_path):
    card = tmp_path / "README.md"
    card.write_text("# Model zoo\n")
    out = benchmarks.run(stand_in, [("fsrcnn", 3, "fsrcnn_x3-x.h5")], ["float"], lambda m, s, p: (BicubicRunner(s), {}),
                         max_minutes=0, results_dir=tmp_path / "cells", summary=tmp_path / "s.json", card=card)
    text = card.read_text()
    assert text.count(benchmarks.BEGIN) == 1 and "**Set5** (NOT the standard set: 2 images)" in text
    assert "| fsrcnn | x3 | pending | – | – | 33.06 [" in text and "| bicubic | x3 |" in text
    assert "Dong et al., FSRCNN" in text and "4 cells are pending" in text and len(out["pending"]) == 4


def test_a_model_that_cannot_be_made_leaves_its_cells_pending_and_the_others_measured(stand_in, tmp_path):
    def make_runner(model, scale, precision):
        if precision == "int8":
            raise AttributeError("'LeakyReLUOps' object has no attribute 'max_value'")
        return BicubicRunner(scale), {}

    out = benchmarks.run(stand_in, [("xlsr", 3, "w.h5")], ["float", "int8"], make_runner,
                         results_dir=tmp_path / "cells", summary=tmp_path / "s.json", card=None)
    assert len(out["pending"]) == 4 and all(k[2] == "int8" for k in out["pending"])
    assert out["errors"] == [["xlsr", 3, "int8", "AttributeError: 'LeakyReLUOps' object has no attribute 'max_value'"]]
    assert "xlsr x3 int8: the model could not be made or run" in benchmarks.card_body(out)


def test_cells_run_cheapest_first_so_a_time_limit_covers_the_most(stand_in, tmp_path):
    order = []

    def make_runner(model, scale, precision):
        order.append((model, precision))
        return BicubicRunner(scale), {}

    pairs = [("big", 3, "b.h5"), ("small", 3, "s.h5")]
    benchmarks.run(stand_in, pairs, ["float", "a16w8"], make_runner, macs={("big", 3): 1e5, ("small", 3): 1e3},
                   set_names=["Set5"], results_dir=tmp_path / "c", summary=tmp_path / "s.json", card=None)
    assert order == [("small", "float"), ("small", "a16w8"), ("big", "float"), ("big", "a16w8")]
