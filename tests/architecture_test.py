"""Imports are data: walk every module's AST and check the arrows of docs/ARCHITECTURE.md."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: deploy's stages, bottom to top: a stage may import only stages to its left.
STAGES = ("data", "convert", "npu", "evaluation", "latency", "policy_search", "runtime", "report", "commands")
#: side stages and what they may import.
SIDE = {"experimental": {"data", "convert", "evaluation", "training"}, "training": {"data", "convert", "evaluation"}}
#: modules every stage may import.
COMMON = {"errors", "_files", "provenance", "__init__"}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "deploy" else None


def _allowed(stage: str) -> set[str]:
    if stage in SIDE:
        return SIDE[stage] | {stage} | COMMON
    if stage == "commands":
        return set(STAGES) | set(SIDE) | COMMON
    if stage in STAGES:
        return set(STAGES[:STAGES.index(stage) + 1]) | COMMON
    return COMMON | {stage}


def violations() -> list[str]:
    bad = []
    for path in sorted(REPO.glob("deploy/**/*.py")):
        rel = path.relative_to(REPO)
        own = rel.parts[1] if len(rel.parts) > 2 else rel.stem
        for name in _imports(path):
            if name.split(".")[0] == "android_harness":
                bad.append(f"{rel}: imports {name} (deploy and android_harness never import each other)")
            target = _stage(name)
            if target and target not in _allowed(own) and target not in COMMON:
                bad.append(f"{rel}: deploy.{own} imports {name}")
    for path in sorted(REPO.glob("android_harness/**/*.py")):
        for name in _imports(path):
            if name.split(".")[0] in ("deploy", "models"):
                bad.append(f"{path.relative_to(REPO)}: imports {name}")
    for path in sorted(REPO.glob("models/**/*.py")):
        for name in _imports(path):
            if name.split(".")[0] in ("deploy", "android_harness"):
                bad.append(f"{path.relative_to(REPO)}: imports {name}")
    for path in sorted(REPO.glob("*/**/*.py")):
        rel = path.relative_to(REPO)
        if rel.parts[0] in ("tools", "bench", "tests", ".venv") or rel.parts[:2] == ("deploy", "commands"):
            continue
        for name in _imports(path):
            if name.startswith("deploy.commands"):
                bad.append(f"{rel}: imports {name} (only tools/ and bench/ use the CLI glue)")
    return bad


def test_imports_point_one_way():
    assert violations() == []


def test_a_wrong_arrow_is_caught(tmp_path, monkeypatch):
    """The checker itself: a data-stage module importing the search is reported."""
    fake = tmp_path / "deploy" / "data"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from deploy.policy_search.solver import search\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert violations() == ["deploy/data/bad.py: deploy.data imports deploy.policy_search.solver",
                            "deploy/data/bad.py: deploy.data imports deploy.policy_search.solver.search"]


def test_no_module_outside_the_cli_glue_reads_absl_flags():
    readers = [str(p.relative_to(REPO)) for p in REPO.glob("deploy/**/*.py")
               if "absl" in " ".join(_imports(p)) and p.relative_to(REPO).parts[1] != "commands"]
    assert readers == []


@pytest.mark.parametrize("name", ["sha256_file", "atomic_write", "read_jsonl"])
def test_shared_helpers_exist_once(name):
    defs = [str(p.relative_to(REPO)) for p in REPO.glob("*/**/*.py")
            if p.relative_to(REPO).parts[0] not in (".venv", "tests")
            and f"def {name}(" in p.read_text()]
    assert defs == ["deploy/_files.py"]


def test_import_deploy_does_not_import_tensorflow():
    code = ("import sys, deploy; print(sorted(deploy.__all__)); "
            "print([m for m in ('tensorflow', 'tf_keras', 'ai_edge_litert', 'onnxruntime') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    listed, loaded = out.strip().splitlines()
    assert "quantize" in listed and "search" in listed and "evaluate" in listed
    assert loaded == "[]"
