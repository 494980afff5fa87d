"""A frame-size search (`--input_size 360x640`): latency and NPU placement at the deployed size,
quality on patches of the same weights (`--val_patch`, 64x64 by default above 128x128 pixels)."""
import pytest

from deploy.convert.sources import ModelSource
from deploy.data.io_convention import IOConvention
from deploy.latency import cost_model
from deploy.policy_search import session
from deploy.policy_search.api import search_with_setup
from deploy.policy_search.config import SearchConfig
from tests.deploy.search_test import _tiny


def test_default_patch_keeps_small_inputs_and_cuts_frames():
    assert session.default_val_patch((64, 64)) == (64, 64)
    assert session.default_val_patch((128, 128)) == (128, 128)
    assert session.default_val_patch((360, 640)) == session.VAL_PATCH == (64, 64)


@pytest.fixture(scope="module")
def framed(hr_dir):
    src = ModelSource("tiny", 2, _tiny(), IOConvention(), False, None)
    s = session.setup(src, SearchConfig(input_size=(32, 48), val_patch=(16, 16), calib_dir=hr_dir, calib_images=2,
                                        val_dir=hr_dir, val_images=2))
    yield s
    s.close()


def test_latency_at_the_deployed_size_quality_on_patches(framed):
    s = framed
    assert s.deployed_hw == (32, 48) and s.oracle.val.lr[0].shape[:2] == (16, 16)
    assert session.provenance(s)["input_hw"] == [32, 48]
    at_frame = cost_model.from_device_profile(s.deployed, session.DEFAULT_PROFILE, model="tiny", scale=2)
    at_patch = cost_model.from_device_profile(s.prep, session.DEFAULT_PROFILE, model="tiny", scale=2)
    wide = {l: "a16w8" for l in s.prep.layers}
    assert s.cost.predict_ms(wide) == pytest.approx(at_frame.predict_ms(wide))
    assert s.cost.predict_ms(wide) > at_patch.predict_ms(wide)


def test_the_deployed_model_is_built_at_the_frame_size(framed):
    from deploy.convert.tflite_io import make_interpreter
    model = framed.build_deployed(framed.oracle.uniform("a8w8"))
    shape = make_interpreter(model, delegates=False).get_input_details()[0]["shape"]
    assert list(shape[1:3]) == [32, 48]


def test_search_answer_is_priced_at_the_frame(framed):
    out = search_with_setup(framed.with_run(budget_db=0.2))
    prob_ms = framed.cost.predict_ms(dict(out.policy.layers) if out.policy.layers else
                                     {l: out.policy.default for l in framed.prep.layers})
    assert out.predicted_ms == pytest.approx(prob_ms, rel=1e-6)
    assert out.report["input_hw"] == [32, 48] and out.report["validation"]["patch_hw"] == [16, 16]


def test_convert_at_the_frame_makes_the_model_the_search_measured(framed, hr_dir, monkeypatch):
    """convert.py --policy at the frame calibrates on the twin (deploy/convert/twin.py) as the search
    calibrated on its patches: the same quantization parameters and weights as the search's deployed model."""
    from deploy.convert import api as convert_api, twin
    from tests.deploy.twin_test import _params
    monkeypatch.setattr(twin, "TWIN_HW", (16, 16))
    monkeypatch.setattr(twin, "TWIN_ABOVE_PX", 16 * 16)
    a = framed.oracle.uniform("a8w8")
    searched = framed.build_deployed(a)
    converted = convert_api.quantize(framed.src, framed.oracle.policy(a), input_size=(32, 48), calib_dir=hr_dir,
                                     calib_images=2)
    assert _params(converted.tflite_bytes) == _params(searched)
