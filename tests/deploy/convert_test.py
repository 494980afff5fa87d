"""Uniform conversion through the TFLite converter, on real calibration photos."""
import json

import numpy as np
import pytest

import models
from deploy.data import calibration
from deploy.convert import precisions, uniform
from deploy.commands import jobs
from deploy.convert.tflite_io import make_interpreter, summarize


@pytest.fixture(scope="module")
def xlsr_fixed(random_weights):
    m = models.build("xlsr", 3, weights=random_weights("xlsr", 3))
    return models.with_fixed_shape(m, "xlsr", 3, (24, 24))


@pytest.fixture(scope="module")
def calib(hr_dir):
    return calibration.calibration_set(3, (24, 24), calib_dir=hr_dir, n_images=3, patches_per_image=2)


@pytest.mark.parametrize("precision", precisions.UNIFORM)
def test_each_precision_converts_runs_and_reports(xlsr_fixed, calib, precision):
    out = uniform.convert_uniform(xlsr_fixed, precision, calib=calib)
    summary = summarize(make_interpreter(out.tflite, delegates=False))
    r = out.report
    assert r["precision"] == precision and r["size_bytes"] == len(out.tflite)
    assert r["input_shape"] == [1, 24, 24, 3]
    assert "DEPTH_TO_SPACE" not in r["op_counts"]  # pixel shuffle is RESHAPE/TRANSPOSE
    conv_dtypes = {o.output_dtypes[0] for o in summary.ops if o.op == "CONV_2D"}
    expected = {"float": "float32", "fp16": "float32", "int8": "int8", "a16w8": "int16"}[precision]
    assert conv_dtypes == {expected}
    if precision in ("int8", "a16w8"):
        assert r["float_ops"] == []  # fully integer: skips, concat, shuffle, clip included
        assert r["calibration"]["images"] == sorted(p.stem for p in calib_dir_files(calib))


def calib_dir_files(calib):
    from pathlib import Path
    return [Path(n) for n in calib.images]


def test_a16w8_prelu_is_rewritten_not_float(random_weights, calib):
    """The converter refuses 16x8 PRELU; rewritten as relu(x) - alpha * relu(-x) nothing stays float
    (`int16x8` is `a16w8`)."""
    m = models.with_fixed_shape(models.build("fsrcnn", 3, weights=random_weights("fsrcnn", 3)),
                                "fsrcnn", 3, (24, 24))
    r = uniform.convert_uniform(m, "int16x8", calib=calib).report
    assert r["precision"] == "a16w8" and r["float_ops"] == []
    assert sorted(r["rewritten_activations"]) == sorted(l.name for l in m.layers if "prelu" in l.name)
    assert len(r["rewritten_activations"]) == 7 and "PRELU" not in r["op_counts"]


def test_bad_precision_and_io_type(xlsr_fixed, calib):
    with pytest.raises(uniform.ConversionError, match="unknown precision"):
        uniform.convert_uniform(xlsr_fixed, "int4", calib=calib)
    with pytest.raises(uniform.ConversionError, match="not available for fp16"):
        uniform.convert_uniform(xlsr_fixed, "fp16", io_type="uint8")


def test_uint8_io_int8_model_runs(xlsr_fixed, calib):
    out = uniform.convert_uniform(xlsr_fixed, "int8", calib=calib, io_type="uint8")
    assert out.report["inputs"][0]["dtype"] == "uint8" and out.report["outputs"][0]["dtype"] == "uint8"


def test_convert_job_writes_model_and_report_atomically(tmp_path, random_weights, hr_dir):
    out = tmp_path / "m.tflite"
    rep = jobs.convert_zoo_model("espcn", 2, "int8", out, input_hw=(16, 16),
                                 weights=str(random_weights("espcn", 2)), calib_dir=str(hr_dir))
    assert out.is_file() and json.loads(out.with_suffix(".json").read_text()) == rep
    with pytest.raises(FileExistsError, match="overwrite=True"):
        jobs.convert_zoo_model("espcn", 2, "int8", out, input_hw=(16, 16),
                               weights=str(random_weights("espcn", 2)), calib_dir=str(hr_dir))
    assert not list(tmp_path.glob(".*tmp"))
    assert jobs.infer_scale(out) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_zoo_model_is_fully_integer_at_int8(name, random_weights, hr_dir):
    m = models.with_fixed_shape(models.build(name, 3, weights=random_weights(name, 3)), name, 3, (24, 24))
    cal = calibration.calibration_set(3, (24, 24), calib_dir=hr_dir, n_images=2, patches_per_image=1)
    r = uniform.convert_uniform(m, "int8", calib=cal).report
    assert r["float_ops"] == [], r["float_ops"]
    x = np.zeros((1, 24, 24, 3), np.float32)
    assert x.shape[1] * 3 == r["outputs"][0]["shape"][1]
