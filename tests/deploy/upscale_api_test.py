"""`deploy.upscale(source, policy, image, UpscaleConfig)`: the workflow behind tools/upscale.py as a
library call; its config checked once and round-tripped, its result frozen, small and saveable."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import deploy
from deploy.errors import UserInputError


def test_config_is_checked_once_and_round_trips(tmp_path):
    c = deploy.UpscaleConfig(tile=(16, 16), cache_dir=tmp_path)
    assert c.wide_fraction == 0.25 and c.cache_dir == str(tmp_path)  # the default share, normalised
    assert deploy.UpscaleConfig.from_json(json.loads(json.dumps(c.to_json()))) == c
    assert deploy.UpscaleConfig(adaptive=False).wide_fraction is None
    for bad, option in ((dict(adaptive=False, wide_fraction=0.5), "wide_fraction"),
                        (dict(wide_fraction=1.5), "wide_fraction"), (dict(threshold=float("nan")), "threshold"),
                        (dict(blend=-1), "blend"), (dict(calib_images=0), "calib_images")):
        with pytest.raises(UserInputError) as e:
            deploy.UpscaleConfig(**bad)
        assert e.value.option == option, bad
    with pytest.raises(UserInputError, match="unknown criterion"):
        deploy.UpscaleConfig(criterion="nope")
    with pytest.raises(UserInputError, match="unknown UpscaleConfig field"):
        deploy.UpscaleConfig.from_json({"tiles": [16, 16]})


@pytest.mark.slow
def test_upscale_returns_a_frozen_result_that_saves_whole(tmp_path, random_weights, hr_dir):
    src = deploy.load_model("espcn", scale=2, weights=str(random_weights("espcn", 2)))
    img = tmp_path / "in.png"
    import skimage.data
    Image.fromarray(skimage.data.astronaut()[100:137, 200:241]).save(img)  # 41x37: not a tile multiple
    config = deploy.UpscaleConfig(tile=(16, 16), blend=2, calib_dir=str(hr_dir), calib_images=3,
                                  cache_dir=str(tmp_path / "cache"))
    r = deploy.upscale(src, deploy.Policy("espcn", 2, "a8w8"), img, config)
    assert r.sr.shape == (74, 82, 3) and r.sr.dtype == np.uint8 and len(repr(r)) < 1000
    assert r.report["config"] == config.to_json() and r.report["wide_fraction_requested"] == 0.25
    with pytest.raises(TypeError):
        r.report["tiles"] = 0  # read-only
    path = r.save(tmp_path / "big.png")
    saved = json.loads(path.with_suffix(".json").read_text())
    assert saved["output"] == str(path) and list(saved)[list(saved).index("input") + 1] == "output"
    assert np.array_equal(np.asarray(Image.open(path)), r.sr)
    with pytest.raises(FileExistsError):
        r.save(path)
    again = deploy.upscale(src, deploy.Policy("espcn", 2, "a8w8"), img, config)
    assert again.report["models"]["cached"] and np.array_equal(again.sr, r.sr)
