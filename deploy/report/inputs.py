"""The report's inputs: one folder of JSON (and crop PNGs), loaded and checked before rendering.

Every number in the report comes from these files, so the report can be re-rendered and
audited (`manifest.json` lists the commands that produced them and each file's sha256). A file
that is missing, corrupt, edited after gathering (sha256 differs from the manifest), or about
another model is skipped with one line saying why; the rest of the report still builds.
"""
from __future__ import annotations

from deploy._files import sha256_file  # noqa: F401  (re-exported: report.build, tests)

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Optional

#: The models a report compares, in table order; bicubic comes from the evaluation JSONs.
VARIANTS = ("float", "int8", "a16w8", "policy")
MANIFEST = "manifest.json"
POLICY = "policy.json"
SENSITIVITY = "sensitivity.json"
PARETO = "pareto.json"
RESULTS = "results.jsonl"
PREDICTIONS = "predictions.json"
CROPS = "crops.json"


def eval_name(variant: str) -> str:
    return f"eval_{variant}.json"


def model_name(variant: str) -> str:
    return f"models/model_{variant}.tflite"


@dataclasses.dataclass
class Inputs:
    """What survived validation; `skipped` holds one line per input left out, and why."""
    root: Path
    manifest: dict[str, Any]
    hashes: dict[str, str]  # relative path -> sha256, every input file present
    evals: dict[str, dict] = dataclasses.field(default_factory=dict)
    models: dict[str, dict] = dataclasses.field(default_factory=dict)  # variant -> convert report
    policy: Optional[dict] = None
    sensitivity: Optional[dict] = None
    pareto: Optional[dict] = None
    records: list[dict] = dataclasses.field(default_factory=list)  # harness records, validated
    predictions: Optional[dict] = None
    crops: Optional[dict] = None
    skipped: list[str] = dataclasses.field(default_factory=list)
    absent: dict[str, str] = dataclasses.field(default_factory=dict)  # section -> why not given

    @property
    def model(self) -> str:
        return self.manifest.get("model", "?")

    @property
    def scale(self) -> Optional[int]:
        return self.manifest.get("scale")

    def model_shas(self) -> dict[str, str]:
        """sha256 of each of this report's .tflite files -> its variant."""
        return {r["sha256"]: v for v, r in self.models.items() if r.get("sha256")}


class _Skip(Exception):
    pass


def _json(inp: Inputs, rel: str) -> Optional[Any]:
    """Parsed JSON of an input file, or None (skip line added) when it cannot be used."""
    path = inp.root / rel
    listed = rel in inp.manifest.get("files", {})
    if not path.is_file():
        if listed:
            inp.skipped.append(f"{rel}: missing (the manifest lists it); re-gather the report")
        return None
    if listed and inp.manifest["files"][rel] != inp.hashes.get(rel):
        inp.skipped.append(f"{rel}: sha256 differs from the manifest (edited after gathering?); "
                           "re-gather the report")
        return None
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as e:
        inp.skipped.append(f"{rel}: not valid JSON ({str(e).splitlines()[0]})")
        return None


def _require(obj: Any, keys: tuple[str, ...], what: str) -> None:
    if not isinstance(obj, dict) or any(k not in obj for k in keys):
        missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
        raise _Skip(f"not {what} (missing {', '.join(missing)})")


def _same_model(inp: Inputs, obj: dict, what: str) -> None:
    if inp.model != "?" and (obj.get("model") != inp.model or int(obj.get("scale", -1)) != inp.scale):
        raise _Skip(f"{what} is for {obj.get('model')} x{obj.get('scale')}, this report is "
                    f"{inp.model} x{inp.scale}")


def _load_evals(inp: Inputs) -> None:
    ref = None
    for v in VARIANTS:
        rel = eval_name(v)
        obj = _json(inp, rel)
        if obj is None:
            continue
        try:
            _require(obj, ("mean", "bicubic", "images", "scale", "convention"), "an evaluate result")
            if inp.scale is not None and int(obj["scale"]) != inp.scale:
                raise _Skip(f"evaluated at x{obj['scale']}, this report is x{inp.scale}")
            key = (obj.get("dataset"), json.dumps(obj["convention"], sort_keys=True),
                   tuple(i.get("name") for i in obj["images"]))
            if ref is not None and key != ref[1]:
                raise _Skip(f"another dataset or metric convention than {ref[0]}")
            ref = ref or (rel, key)
            inp.evals[v] = obj
        except _Skip as e:
            inp.skipped.append(f"{rel}: {e}")


def _load_models(inp: Inputs) -> None:
    for v in VARIANTS:
        rel = model_name(v)
        tfl = inp.root / rel
        rep = _json(inp, rel[:-len(".tflite")] + ".json")
        if rep is None or not tfl.is_file():
            if rep is not None:
                inp.skipped.append(f"{rel}: missing beside its report")
            continue
        if rep.get("sha256") != inp.hashes.get(rel):
            inp.skipped.append(f"{rel}: its report's sha256 ({str(rep.get('sha256'))[:12]}) is not the "
                               f"file's ({inp.hashes.get(rel, '')[:12]}); reconvert it")
            continue
        inp.models[v] = rep


def _load_search(inp: Inputs) -> None:
    sens = _json(inp, SENSITIVITY)
    if sens is not None:
        try:
            _require(sens, ("kind", "model", "scale", "layers", "baseline"), "a sensitivity result")
            if sens["kind"] != "sensitivity":
                raise _Skip(f"kind is '{sens['kind']}', not 'sensitivity'")
            _same_model(inp, sens, "the sensitivity")
            known = inp.manifest.get("model_sha256s", [])
            if known and sens.get("model_sha256") and not any(
                    k.startswith(sens["model_sha256"]) or sens["model_sha256"].startswith(k) for k in known):
                raise _Skip(f"computed for model sha256 {sens['model_sha256'][:12]}, not this report's "
                            f"weights ({', '.join(k[:12] for k in known)})")
            if not sens["layers"]:
                raise _Skip("no layers")
            for layer in sens["layers"]:
                _require(layer, ("layer", "drop_db"), "a sensitivity layer entry")
            inp.sensitivity = sens
        except _Skip as e:
            inp.skipped.append(f"{SENSITIVITY}: {e}")
    front = _json(inp, PARETO)
    if front is not None:
        try:
            _require(front, ("kind", "model", "scale", "points"), "a Pareto result")
            if front["kind"] != "pareto":
                raise _Skip(f"kind is '{front['kind']}', not 'pareto'")
            _same_model(inp, front, "the Pareto front")
            if not front["points"]:
                raise _Skip("no points")
            for p in front["points"]:
                _require(p, ("policy", "psnr_y", "predicted_ms"), "a Pareto point")
            inp.pareto = front
        except _Skip as e:
            inp.skipped.append(f"{PARETO}: {e}")


def _load_results(inp: Inputs) -> None:
    path = inp.root / RESULTS
    if not path.is_file():
        return
    if RESULTS in inp.manifest.get("files", {}) and inp.manifest["files"][RESULTS] != inp.hashes.get(RESULTS):
        inp.skipped.append(f"{RESULTS}: sha256 differs from the manifest (edited after gathering?)")
        return
    lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    if not lines:
        inp.skipped.append(f"{RESULTS}: empty (no benchmark records); run tools/adb_bench.py first")
        return
    bad, other_schema, foreign = 0, 0, {}
    shas = inp.model_shas()
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(rec, dict) or rec.get("kind") not in ("trial", "summary"):
            continue
        if rec.get("schema_version") != 1:
            other_schema += 1
            continue
        sha = (rec.get("model") or {}).get("sha256", "")
        if sha not in shas:
            foreign.setdefault(sha, [0, (rec.get("model") or {}).get("name", "?")])[0] += 1
            continue
        inp.records.append(rec)
    if bad:
        inp.skipped.append(f"{RESULTS}: {bad} line(s) are not JSON (torn write?)")
    if other_schema:
        inp.skipped.append(f"{RESULTS}: {other_schema} record(s) of another schema_version (this reads 1)")
    for sha, (n, name) in foreign.items():
        inp.skipped.append(f"{RESULTS}: {n} record(s) for {name} (sha256 {sha[:12]}) match none of "
                           "this report's models (results from a different model)")
    if not inp.records and not (bad or other_schema or foreign):
        inp.skipped.append(f"{RESULTS}: no trial or summary records")


def load(root: str | Path) -> Inputs:
    """Load and check every input under `root`; never raises for a bad input file."""
    root = Path(root)
    hashes = {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*"))
              if p.is_file() and p.name != MANIFEST}
    inp = Inputs(root, {}, hashes)
    if (root / MANIFEST).is_file():
        try:
            inp.manifest = json.loads((root / MANIFEST).read_text())
        except ValueError:
            inp.skipped.append(f"{MANIFEST}: not valid JSON; file hashes cannot be checked")
    inp.manifest.setdefault("files", {})
    inp.skipped.extend(inp.manifest.get("skipped", []))
    inp.absent.update(inp.manifest.get("absent", {}))
    _load_evals(inp)
    _load_models(inp)
    inp.policy = _json(inp, POLICY)
    _load_search(inp)
    _load_results(inp)
    inp.predictions = _json(inp, PREDICTIONS)
    inp.crops = _json(inp, CROPS)
    return inp
