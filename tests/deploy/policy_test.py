import json

import pytest

from deploy.convert.layer_map import layer_of
from deploy.convert.policy import Policy, PolicyError


def test_round_trip_and_defaults(tmp_path):
    p = Policy("xlsr", 3, "a8w8", (("head_g0", "a16w8"), ("tail", "float")))
    path = tmp_path / "p.json"
    path.write_text(p.dumps())
    q = Policy.load(path)
    assert q == p
    assert q.precision_of("tail") == "float" and q.precision_of("fuse") == "a8w8"
    assert q.resolved(["head_g0", "fuse"]) == {"head_g0": "a16w8", "fuse": "a8w8"}


def test_unknown_keys_refused_comment_allowed_and_missing_fields_reported():
    p = Policy.from_json({"model": "abpn", "scale": 3, "layers": {}, "comment": "hand-made"})
    assert p.default == "a8w8" and p.io_type == "float32"
    with pytest.raises(PolicyError, match="unknown key 'layer' .did you mean 'layers'"):  # issue 31
        Policy.from_json({"model": "abpn", "scale": 3, "layer": {"conv1": "a16w8"}})
    with pytest.raises(PolicyError, match="missing scale"):
        Policy.from_json({"model": "abpn"})


@pytest.mark.parametrize("obj,msg", [
    ({"model": "m", "scale": 3, "layers": {"a": "int4"}}, "unknown precision 'int4'"),
    ({"model": "m", "scale": 3, "default": "fp16"}, "default 'fp16' is not a precision"),
    ({"model": "m", "scale": 3, "io_type": "int16"}, "io_type"),
    ({"model": "m", "scale": "three"}, "not an integer"),
    ({"model": "m", "scale": 3, "version": 99}, "newer"),
])
def test_bad_policies(obj, msg):
    with pytest.raises(PolicyError, match=msg):
        Policy.from_json(obj)


def test_validate_suggests_nearest_layer_and_checks_model_scale():
    p = Policy("abpn", 3, "a8w8", (("conv77", "a16w8"),))
    with pytest.raises(PolicyError, match="did you mean conv7"):
        p.validate(["conv1", "conv7", "anchor"])
    with pytest.raises(PolicyError, match="for model 'abpn', not 'xlsr'"):
        p.validate(model="xlsr", scale=3)
    with pytest.raises(PolicyError, match="x3, not x4"):
        p.validate(model="abpn", scale=4)


def test_bad_json_file(tmp_path):
    f = tmp_path / "p.json"
    f.write_text("{not json")
    with pytest.raises(PolicyError, match="not valid JSON"):
        Policy.load(f)
    with pytest.raises(PolicyError, match="does not exist"):
        Policy.load(tmp_path / "none.json")


def test_layer_of_matches_whole_components_only():
    names = {"body_1", "body_10", "conv"}
    assert layer_of("m/body_10/Relu;m/body_10/Conv2D", names) == "body_10"
    assert layer_of("m/body_1/Conv2D", names) == "body_1"
    assert layer_of("m/body_1x/Conv2D", names) is None
    # the op itself is the last fused part: the ADD of `body_1` carries its consumers' names first
    assert layer_of("m/conv/Relu;m/body_1/add", names) == "body_1"
    assert json.dumps(Policy("m", 2).to_json())
