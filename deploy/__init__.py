"""srdeploy's library: Keras SR models -> per-layer int8/int16 TFLite -> quality -> NPU -> latency.

The public API, imported lazily (`import deploy` does not import TensorFlow):

    import deploy
    src = deploy.load_model("xlsr", scale=3)
    policy = deploy.Policy.uniform(src, "a8w8").with_layers({"tail": "a16w8"})
    q = deploy.quantize(src, policy)          # frozen: .tflite_bytes, .report, .save(path)
    q.save("m.tflite")
    r = deploy.evaluate("m.tflite")           # frozen EvalResult, the CLI's JSON contract
    best = deploy.search(src, deploy.SearchConfig(device_profile="htp_npu"), budget_db=0.1)  # .policy
    ms = deploy.predict_latency(q, device_profile="snapdragon_8gen3").ms   # or (src, policy)
    compiled = deploy.npu_compile(q, "SM8650")  # [CompiledModel]: .report, .save(path)
    big = deploy.upscale(src, policy, "photo.png", deploy.UpscaleConfig(wide_fraction=0.25))  # .sr, .save(path)

Stages live in subpackages (data, convert, evaluation, npu, latency, policy_search, runtime,
experimental, training, report); `commands/` is the CLI glue.
"""
from __future__ import annotations

import importlib
from typing import Any

from deploy.errors import ModelError, SrdeployError, UserInputError

#: public name -> (module, attribute)
_API = {
    "load_model": ("deploy.convert.sources", "load_model"),
    "ModelSource": ("deploy.convert.sources", "ModelSource"),
    "Policy": ("deploy.convert.policy", "Policy"),
    "PolicyError": ("deploy.convert.policy", "PolicyError"),
    "quantize": ("deploy.evaluation.int8_route", "quantize"),  # one model per precision; int8: the better route
    "QuantizeConfig": ("deploy.evaluation.config", "QuantizeConfig"),
    "QuantizedModel": ("deploy.convert.api", "QuantizedModel"),
    "EvalConfig": ("deploy.evaluation.config", "EvalConfig"),
    "evaluate": ("deploy.evaluation.api", "evaluate"),
    "EvalResult": ("deploy.evaluation.evaluator", "EvalResult"),
    "search": ("deploy.policy_search.api", "search"),
    "SearchConfig": ("deploy.policy_search.config", "SearchConfig"),
    "measure_sensitivity": ("deploy.policy_search.workflows", "measure_sensitivity"),
    "pareto_front": ("deploy.policy_search.workflows", "pareto_front"),
    "SearchOutcome": ("deploy.policy_search.api", "SearchOutcome"),
    "BudgetImpossible": ("deploy.policy_search.api", "BudgetImpossible"),
    "IOConvention": ("deploy.data.io_convention", "IOConvention"),
    "npu_compile": ("deploy.npu", "compile_for_socs"),
    "CompiledModel": ("deploy.npu.compiler", "CompiledModel"),
    "predict_latency": ("deploy.latency.api", "predict_latency"),
    "convert_file": ("deploy.evaluation.workflows", "convert_file"),  # quantize + write .tflite and report
    "upscale": ("deploy.runtime.upscale", "upscale"),
    "UpscaleConfig": ("deploy.runtime.upscale", "UpscaleConfig"),
    "UpscaleResult": ("deploy.runtime.upscale", "UpscaleResult"),
    "LatencyPrediction": ("deploy.latency.api", "LatencyPrediction"),
}

__all__ = sorted([*_API, "ModelError", "SrdeployError", "UserInputError"])


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attr = _API[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module 'deploy' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
