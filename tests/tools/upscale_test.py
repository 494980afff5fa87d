"""tools/upscale.py as a user runs it: any image size, a report beside the output, cached models,
and one `error:` line for bad input."""
import json

import numpy as np
import pytest
from PIL import Image

from deploy.convert.policy import Policy
from tests.conftest import run_tool


@pytest.fixture(scope="module")
def setup(tmp_path_factory, random_weights, hr_dir):
    d = tmp_path_factory.mktemp("upscale")
    (d / "p.json").write_text(Policy("espcn", 2, "a8w8").dumps())
    (d / "xlsr.json").write_text(Policy("xlsr", 2, "a8w8").dumps())
    import skimage.data
    Image.fromarray(skimage.data.astronaut()[100:137, 200:241]).save(d / "odd.png")  # 41x37
    Image.fromarray(skimage.data.astronaut()[100:109, 200:212]).save(d / "tiny.png")  # 12x9 < tile
    common = ["--model", "espcn", "--scale", "2", "--weights", str(random_weights("espcn", 2)),
              "--tile", "16x16", "--blend", "2", "--calib_dir", str(hr_dir), "--calib_images", "3",
              "--cache_dir", str(d / "cache")]
    return d, common


def _one_line_error(proc, pattern: str) -> None:
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(err) == 1 and err[0].startswith("error: "), proc.stderr
    assert pattern in err[0], err[0]


@pytest.mark.slow
def test_adaptive_upscale_any_size_then_cached(setup):
    d, common = setup
    p = run_tool("upscale", *common, "--policy", str(d / "p.json"), "--adaptive", "--wide_fraction", "0.5",
                 "--input", str(d / "odd.png"), "--out", str(d / "big.png"))
    assert p.returncode == 0, p.stderr
    assert "wide" in p.stdout and "built" in p.stdout
    assert Image.open(d / "big.png").size == (82, 74)
    r = json.loads((d / "big.json").read_text())
    assert r["tiles"] == np.array(r["route"]).size == np.prod(r["tile_grid"]) > 1
    assert r["wide_tiles"] == np.array(r["route"]).sum() == np.ceil(0.5 * r["tiles"])
    # smaller than a tile: padded, still upscaled; the models come from the cache now
    p = run_tool("upscale", *common, "--policy", str(d / "p.json"), "--input", str(d / "tiny.png"),
                 "--out", str(d / "tiny_x2.png"))
    assert p.returncode == 0, p.stderr
    assert "cached" in p.stdout and Image.open(d / "tiny_x2.png").size == (24, 18)
    r = json.loads((d / "tiny_x2.json").read_text())
    assert r["adaptive"] is False and r["tiles"] == 1 and r["wide_tiles"] == 0


def test_unreadable_image(setup):
    d, common = setup
    (d / "bad.png").write_bytes(b"not a png")
    _one_line_error(run_tool("upscale", *common, "--policy", str(d / "p.json"), "--input", str(d / "bad.png"),
                             "--out", str(d / "o.png")), "cannot read image")
    assert not (d / "o.png").exists()


def test_policy_for_another_model(setup):
    d, common = setup
    _one_line_error(run_tool("upscale", *common, "--policy", str(d / "xlsr.json"), "--adaptive",
                             "--input", str(d / "odd.png"), "--out", str(d / "o.png")),
                    "policy is for model 'xlsr', not 'espcn'")
    assert not (d / "o.png").exists() and not (d / "o.json").exists()


def test_bad_fraction_and_missing_flags(setup):
    d, common = setup
    _one_line_error(run_tool("upscale", *common, "--policy", str(d / "p.json"), "--adaptive",
                             "--wide_fraction", "2", "--input", str(d / "odd.png"), "--out", str(d / "o.png")),
                    "between 0 and 1")
    _one_line_error(run_tool("upscale", *common, "--input", str(d / "odd.png"), "--out", str(d / "o.png")),
                    "--policy is required")
