"""Produce a report's inputs from a model source: convert, evaluate, crop, copy the user's files.

Everything the report shows is written here as files under `inputs/` first (with the commands
that reproduce each and their sha256 in `manifest.json`); rendering then reads only those files.
Quality is computed only through our own evaluate: the float model through
`deploy.evaluation.api.evaluate_source` (Keras, whole images: the reference), the converted models through
`deploy.evaluation.api.evaluate_tflite` on the very .tflite files saved beside it, so harness results can
be matched to them by sha256.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
import json
import platform
import shutil
from pathlib import Path
from typing import Optional, Sequence

import models
from deploy.provenance import package_version
from deploy.data import images
from deploy.convert import per_layer as hybrid
from deploy.evaluation.config import QuantizeConfig
from deploy.evaluation.int8_route import quantize  # the one model per precision (int8: the better route)
from deploy.evaluation import api as evaluation_api
from deploy.evaluation.evaluator import write_json
from deploy._files import atomic_write
from deploy.convert.policy import Policy
from deploy.report import crops, quality
from deploy.report.inputs import (CROPS, MANIFEST, PARETO, POLICY, PREDICTIONS, RESULTS, SENSITIVITY,
                                  eval_name, model_name, sha256_file)
from deploy.evaluation.runners import KerasRunner, TFLiteRunner
from deploy.convert.sources import ModelSource


@dataclasses.dataclass(frozen=True)
class GatherOptions:
    policy: Optional[str] = None  # a policy file; None: the default hand policy (below)
    sensitivity: Optional[str] = None
    pareto: Optional[str] = None
    results: Optional[str] = None
    data_dir: Optional[str] = None
    calib_dir: Optional[str] = None
    input_hw: tuple[int, int] = (64, 64)
    calib_images: int = 8
    n_crops: int = 3
    device_profiles: tuple[str, ...] = ()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("srdeploy", "tensorflow-cpu", "ai-edge-litert", "litert-quantizer"):
        v = package_version(pkg)
        if v is not None:
            out[pkg] = v
    return out


#: Which harness rows a shipped device profile describes (override: --device_profile NAME=k:v,...).
DEFAULT_MATCH = {"desktop_xnnpack": {"serial": "desktop", "delegate": "xnnpack"},
                 "htp_npu": {"delegate": "qnn"}, "nnapi_npu_int16_cpu": {"delegate": "nnapi"}}


def parse_profile(spec: str) -> tuple[str, dict[str, str]]:
    """'NAME' or 'NAME=key:value,key:value' (harness device/config fields) -> (name, match)."""
    name, _, rest = spec.partition("=")
    if not rest:
        return name, dict(DEFAULT_MATCH.get(name, {}))
    match = {}
    for part in rest.split(","):
        k, sep, v = part.partition(":")
        if not sep or not k.strip():
            raise UserInputError(f"--device_profile {spec}: write NAME=key:value,... (e.g. "
                             "desktop_xnnpack=serial:desktop,delegate:xnnpack,num_threads:2)")
        match[k.strip()] = v.strip()
    return name, match


def predictions(src: ModelSource, input_hw: tuple[int, int], policy: Policy,
                profiles: Sequence[str]) -> dict:
    """Cost-model predictions per device profile and model, or why there are none.

    Uses deploy.latency (`from_device_profile(prep, name, model=, scale=).predict_ms(resolved)`);
    without profiles given, every shipped one. Desktop threads come from the profile's record.
    """
    try:
        from deploy.latency import cost_model
    except ImportError:
        return {"available": False, "why": "no cost model (deploy/latency/cost_model.py is not in this srdeploy)"}
    specs = list(profiles) or cost_model.known_profiles()
    if not specs:
        return {"available": False, "why": "no cost model: no device profile"}
    prep = hybrid.prepare(src.fixed(input_hw))
    names = prep.layers
    policies = {"int8": Policy.for_layers(src.name, src.scale, "a8w8", names),
                "a16w8": Policy.for_layers(src.name, src.scale, "a16w8", names),
                "float": Policy.for_layers(src.name, src.scale, "float", names), "policy": policy}
    out = {"available": True, "profiles": {}}
    for spec in specs:
        name, match = parse_profile(spec)
        prof = cost_model.load_profile(name)
        threads = (prof.measured or {}).get("threads")
        if threads and "num_threads" not in match and "=" not in spec:
            match["num_threads"] = str(threads)
        cm = cost_model.from_device_profile(prep, prof, model=src.name, scale=src.scale)
        out["profiles"][prof.name] = {"match": match, "description": prof.description,
                                      "ms": {v: round(float(cm.predict_ms(p.resolved(names))), 4)
                                             for v, p in policies.items()}}
    return out


def _copy_user_file(given: Optional[str], rel: str, inputs_dir: Path, manifest: dict, flag: str,
                    section: str) -> None:
    if not given:
        manifest["absent"][section] = f"no --{flag} given"
        return
    path = Path(given)
    if not path.is_file():
        manifest["skipped"].append(f"--{flag} {given}: file does not exist")
        manifest["absent"][section] = f"--{flag} {given} does not exist"
        return
    shutil.copyfile(path, inputs_dir / rel)
    manifest["sources"][rel] = str(path)
    manifest["commands"].append(f"cp {path} inputs/{rel}  # --{flag}")


def gather(src: ModelSource, inputs_dir: Path, opts: GatherOptions, log=print) -> dict:
    """Write every input of the report under `inputs_dir`; returns the manifest."""
    inputs_dir.mkdir(parents=True, exist_ok=True)
    hw = opts.input_hw
    size = f"{hw[0]}x{hw[1]}"
    data_flag = f" --data {opts.data_dir}" if opts.data_dir else ""
    calib = (f" --calib_images {opts.calib_images}" if opts.calib_images != 8 else "") + \
        (f" --calib_dir {opts.calib_dir}" if opts.calib_dir else "")
    # the flags that name this model again: a zoo name, or the user's file with its convention
    zoo = (f"--model {src.name} --scale {src.scale}" if src.zoo else
           f"--keras_model {src.weights} --scale {src.scale} --channels {src.convention.channels} "
           f"--value_range {src.convention.value_range}")
    manifest: dict = {"model": src.name, "scale": src.scale, "weights": src.weights, "input_size": size,
                      "commands": [], "skipped": [], "absent": {}, "sources": {}, "versions": _versions()}
    wpath = models.weights_path(src.name, src.scale) if src.zoo else None
    manifest["model_sha256s"] = [sha256_file(wpath)] if wpath and src.weights == wpath.name else []

    if opts.policy:
        policy = Policy.load(opts.policy)
        policy.validate(model=src.name, scale=src.scale)
        manifest["policy_source"] = str(opts.policy)
    else:
        log("[report] choosing the default policy (input layers and tail at a16w8)")
        policy = hybrid.hand_policy(hybrid.prepare(src.fixed(hw)), src.name, src.scale)
        manifest["policy_source"] = "default: input layers and tail a16w8, rest a8w8"
    atomic_write(inputs_dir / POLICY, policy.dumps())

    steps = [("float", "float"), ("int8", "int8"), ("a16w8", "a16w8")]
    for variant, precision in steps:
        log(f"[report] converting {variant}")
        quantize(src, precision, QuantizeConfig(calib_images=opts.calib_images), input_size=hw,
                 calib_dir=opts.calib_dir).save(inputs_dir / model_name(variant), overwrite=True)
        manifest["commands"].append(f"python tools/convert.py {zoo} --precision {precision} --input_size {size}"
                                    f"{calib} --out inputs/{model_name(variant)}")
    log("[report] converting the policy's model")
    quantize(src, Policy.load(inputs_dir / POLICY), QuantizeConfig(calib_images=opts.calib_images), input_size=hw,
             calib_dir=opts.calib_dir).save(inputs_dir / model_name("policy"), overwrite=True)
    manifest["commands"].append(f"python tools/convert.py {zoo} --policy inputs/{POLICY} --input_size {size}"
                                f"{calib} --out inputs/{model_name('policy')}")

    log("[report] evaluating float (Keras)")
    evals = {"float": evaluation_api.evaluate_source(src, "float", data_dir=opts.data_dir)}
    manifest["commands"].append(f"python tools/evaluate.py {zoo} --precision float{data_flag} "
                                f"--json inputs/{eval_name('float')}")
    for variant in ("int8", "a16w8", "policy"):
        log(f"[report] evaluating {variant}")
        evals[variant] = evaluation_api.evaluate_tflite(inputs_dir / model_name(variant), data_dir=opts.data_dir,
                                              scale=src.scale, convention=src.convention)
        manifest["commands"].append(f"python tools/evaluate.py --tflite inputs/{model_name(variant)} "
                                    f"--scale {src.scale}{data_flag} --json inputs/{eval_name(variant)}")
    for variant, result in evals.items():
        write_json(result, inputs_dir / eval_name(variant))

    if opts.n_crops > 0:
        log("[report] cutting visual crops")
        names = quality.hardest_images({v: r.to_json() for v, r in evals.items()}, opts.n_crops)
        samples = images.eval_samples(src.scale, opts.data_dir)
        radius = evaluation_api.read_report(inputs_dir / model_name("int8")).get("receptive_radius_lr")
        overlap = evaluation_api.tile_overlap(radius, hw)
        runners = {"float": KerasRunner(src.model, src.scale, src.convention)}
        for v in ("int8", "policy"):
            runners[v] = TFLiteRunner(inputs_dir / model_name(v), src.scale, overlap=overlap,
                                      convention=src.convention)
        atomic_write(inputs_dir / CROPS, json.dumps(crops.gather(samples, runners, names, inputs_dir, src.scale),
                                                    indent=2) + "\n")

    _copy_user_file(opts.sensitivity, SENSITIVITY, inputs_dir, manifest, "sensitivity", "sensitivity")
    _copy_user_file(opts.pareto, PARETO, inputs_dir, manifest, "pareto", "pareto")
    _copy_user_file(opts.results, RESULTS, inputs_dir, manifest, "results", "latency")
    log("[report] cost-model predictions")
    atomic_write(inputs_dir / PREDICTIONS,
                 json.dumps(predictions(src, hw, policy, opts.device_profiles), indent=2) + "\n")

    manifest["files"] = {p.relative_to(inputs_dir).as_posix(): sha256_file(p)
                         for p in sorted(inputs_dir.rglob("*")) if p.is_file() and p.name != MANIFEST}
    atomic_write(inputs_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest
