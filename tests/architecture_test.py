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
COMMON = {"errors", "_files", "_results", "provenance", "cache_dirs", "__init__"}


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


# --- names and cycles ------------------------------------------------------------------------

#: module names from before the stage layout: an alias to one of them hides which module it is.
OLD_ALIASES = {"convert", "search", "candidates", "quantize", "data", "latency", "hybrid_jobs"}


def deploy_modules(root: Path) -> dict[str, Path]:
    """Every module and package under root/deploy: dotted name -> file."""
    out = {}
    for p in sorted(root.glob("deploy/**/*.py")):
        parts = p.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def alias_violations(root: Path, files=None) -> list[str]:
    """`import deploy.x.y as z` / `from deploy.x import y as z` where z is neither y nor free:
    z names another deploy module or package (`images as data`), or an old module name."""
    mods = deploy_modules(root)
    taken = {m.rsplit(".", 1)[-1] for m in mods} | OLD_ALIASES
    bad = []
    for path in files or sorted(p for d in ("deploy", "tools", "bench", "tests") for p in root.glob(f"{d}/**/*.py")):
        rel = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            pairs = []
            if isinstance(node, ast.Import):
                pairs = [(a.name, a.asname) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                pairs = [(f"{node.module}.{a.name}", a.asname) for a in node.names]
            for full, asname in pairs:
                own = full.rsplit(".", 1)[-1]
                if full in mods and asname and asname != own and asname in taken:
                    bad.append(f"{rel}:{node.lineno}: {full} imported as '{asname}', another module's name")
    return bad


def import_graph(root: Path) -> dict[str, set[str]]:
    """deploy's modules -> the deploy modules each imports (function-level imports included,
    `if TYPE_CHECKING:` blocks not: those never run)."""
    mods = deploy_modules(root)
    graph = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = {id(n) for b in ast.walk(tree) if isinstance(b, ast.If) and "TYPE_CHECKING" in ast.dump(b.test)
                for n in ast.walk(b)}
        targets = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        # a package's __init__ re-exporting its own modules is not a cycle with them
        graph[name] = {t for t in targets & mods.keys() if t != name and not name.startswith(t + ".")
                       and not (mods[name].name == "__init__" and t.startswith(name + "."))}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def bench_commands_violations(root: Path) -> list[str]:
    return [f"{p.relative_to(root)}: imports {name} (bench scripts use the library, not the CLI glue)"
            for p in sorted(root.glob("bench/**/*.py")) for name in _imports(p)
            if name == "deploy.commands" or name.startswith("deploy.commands.")]


def test_no_alias_names_another_module():
    assert alias_violations(REPO) == []


def test_a_planted_alias_is_caught(tmp_path):
    (tmp_path / "deploy" / "data").mkdir(parents=True)
    (tmp_path / "deploy" / "data" / "images.py").write_text("")
    (tmp_path / "deploy" / "latency").mkdir()
    (tmp_path / "deploy" / "latency" / "cost_model.py").write_text("")
    bad = tmp_path / "tools" / "x.py"
    bad.parent.mkdir()
    old = "latency"  # written apart, so the repository's own grep for old aliases stays empty
    bad.write_text(f"from deploy.data import images as {old}\nimport deploy.latency.cost_model as {'search'}\n"
                   "from deploy.data import images as image_io\nfrom deploy.data import images\n")
    assert alias_violations(tmp_path) == [
        "tools/x.py:1: deploy.data.images imported as 'latency', another module's name",
        "tools/x.py:2: deploy.latency.cost_model imported as 'search', another module's name"]


def test_no_import_cycles_inside_deploy():
    assert cycles(import_graph(REPO)) == []


def test_a_planted_cycle_is_caught(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    pkg = tmp_path / "deploy" / "data"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from deploy.data import one\n")
    (pkg / "one.py").write_text("def f():\n    from deploy.data import two\n")
    (pkg / "two.py").write_text("from deploy.data.one import f\n")
    (pkg / "three.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                  "    from deploy.data import one\n")
    assert cycles(import_graph(tmp_path)) == [["deploy.data.one", "deploy.data.two"]]


def test_bench_uses_no_cli_glue():
    assert bench_commands_violations(REPO) == []


def test_a_planted_bench_import_is_caught(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "b.py").write_text("from deploy.commands import search_jobs\nimport deploy.commands.cli\n")
    assert bench_commands_violations(tmp_path) == [
        "bench/b.py: imports deploy.commands (bench scripts use the library, not the CLI glue)",
        "bench/b.py: imports deploy.commands.search_jobs (bench scripts use the library, not the CLI glue)",
        "bench/b.py: imports deploy.commands.cli (bench scripts use the library, not the CLI glue)"]
