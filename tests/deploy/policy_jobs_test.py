"""`convert.py --policy hybrid.json --out hybrid.tflite`: the natural naming works, the policy survives."""
from __future__ import annotations

import json

import deploy
from deploy.commands.policy_jobs import convert_with_policy
from deploy.evaluation.api import read_report


def test_report_never_lands_on_the_policy_file(tmp_path, hr_dir):
    src = deploy.load_model("espcn", scale=3)
    policy_file = tmp_path / "hybrid.json"
    policy_text = deploy.Policy.uniform(src, "a8w8").with_layers({"conv3": "a16w8"}).dumps()
    policy_file.write_text(policy_text)
    report = convert_with_policy(src, str(policy_file), tmp_path / "hybrid.tflite", input_hw=(16, 16),
                                 calib_dir=str(hr_dir), calib_images=3)
    assert policy_file.read_text() == policy_text  # untouched
    side = tmp_path / "hybrid.tflite.json"
    assert report["report_path"] == str(side) and json.loads(side.read_text())["precision"] == "policy"
    # evaluation finds the model's own report, not the policy beside it (which also has a "scale")
    assert read_report(tmp_path / "hybrid.tflite")["sha256"] == report["sha256"]
