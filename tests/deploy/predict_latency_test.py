"""tools/predict_latency.py and deploy.latency.predict on the phone profiles fitted on published numbers."""
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.latency.device_profiles import LatencyError, load_profile
from deploy.latency.predict import predict

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("profile", ["snapdragon_8gen3", "snapdragon_8elite", "snapdragon_8elitegen5", "mediatek_mdla3"])
def test_int16_costs_more_than_int8_and_every_number_is_sourced(profile):
    p = load_profile(profile)   # the loader refuses unsourced entries
    assert p.ops["conv_kxk"]["a16w8"] < p.ops["conv_kxk"]["a8w8"]
    a8 = predict(profile=profile, model="espcn", scale=2, precision="a8w8", input_hw=(16, 16))
    a16 = predict(profile=profile, model="espcn", scale=2, precision="a16w8", input_hw=(16, 16))
    assert 0 < a8["ms"] < a16["ms"]
    assert abs(sum(r["ms"] for r in a8["breakdown"]) - a8["ms"]) < 1e-9


def test_exactly_one_model_source():
    with pytest.raises(LatencyError, match="exactly one"):
        predict(profile="snapdragon_8gen3")


def test_tool_prints_ms_on_its_last_line():
    out = subprocess.run([sys.executable, "tools/predict_latency.py", "--model", "quicksrnet_small", "--scale", "4",
                          "--precision", "a8w8", "--device_profile", "snapdragon_8gen3", "--input_size", "32x32"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) > 0
