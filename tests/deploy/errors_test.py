"""One error tree: every library error is a SrdeployError; the CLI words it from its fields."""
from __future__ import annotations

import ast
import builtins
import importlib
from pathlib import Path

import pytest

import deploy
import models
from deploy._files import OutputExistsError
from deploy.commands.cli import USER_ERRORS, run_cli, wording
from deploy.errors import SrdeployError, UserInputError, choice_error

REPO = Path(__file__).resolve().parents[2]
#: raised on purpose and not user errors: control flow, lazy attributes, our own invariants.
NOT_USER_ERRORS = {"AttributeError", "SystemExit", "AssertionError", "KeyboardInterrupt", "NotImplementedError"}
#: internal invariants (a failure there is our bug and keeps its traceback)
INVARIANTS = {("deploy/convert/ptq/bias_correction.py", "ValueError"), ("deploy/experimental/qat.py", "RuntimeError")}


def _error_classes():
    for path in sorted([*REPO.glob("deploy/**/*.py"), *REPO.glob("models/*.py")]):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Impossible", "Missing",
                                                                       "Unsupported", "Stopped")):
                module = ".".join(path.relative_to(REPO).with_suffix("").parts)
                yield module, node.name


@pytest.mark.parametrize("module, name", list(_error_classes()))
def test_every_library_error_derives_from_srdeploy_error(module, name):
    assert issubclass(getattr(importlib.import_module(module), name), SrdeployError)


def test_the_tree_holds_the_zoo_and_the_search():
    assert issubclass(models.ModelError, SrdeployError) and issubclass(models.ModelError, ValueError)
    assert issubclass(deploy.BudgetImpossible, SrdeployError) and deploy.BudgetImpossible.exit_code == 3
    assert deploy.SrdeployError is SrdeployError and USER_ERRORS == (SrdeployError, OSError)


def test_library_raises_no_bare_builtin_errors():
    """A user-facing ValueError/FileExistsError/RuntimeError would pass the CLI as a traceback."""
    bad = []
    for path in sorted(REPO.glob("deploy/**/*.py")):
        rel = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                f = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if (isinstance(f, ast.Name) and isinstance(getattr(builtins, f.id, None), type)
                        and f.id not in NOT_USER_ERRORS and (rel, f.id) not in INVARIANTS):
                    bad.append(f"{rel}:{node.lineno} raises {f.id}")
    assert bad == []


def test_errors_carry_fields_and_the_cli_words_them():
    e = choice_error("oracle", "x", ("fast", "litert"))
    assert (e.option, e.value) == ("oracle", "x") and str(e) == "oracle must be one of fast, litert, not 'x'"
    assert wording(e) == "--oracle must be one of fast, litert, not 'x'"
    e = OutputExistsError("m.tflite exists; pass overwrite=True to replace it", file="m.tflite")
    assert isinstance(e, FileExistsError) and e.file == "m.tflite"
    assert wording(e) == "m.tflite exists; pass --overwrite to replace it"
    assert wording(UserInputError("a  message\n on two lines")) == "a message on two lines"


def test_run_cli_exit_codes_and_our_bugs(capsys):
    def boom(exc):
        def f():
            raise exc
        return f
    with pytest.raises(SystemExit) as e:
        run_cli(boom(deploy.BudgetImpossible("budget impossible: ...", value=0.1)))
    assert e.value.code == 3
    with pytest.raises(SystemExit) as e:
        run_cli(boom(FileNotFoundError(2, "No such file", "x.png")))
    assert e.value.code == 2 and "x.png" in capsys.readouterr().err
    with pytest.raises(ValueError):  # a plain ValueError is our bug: it keeps its traceback
        run_cli(boom(ValueError("bug")))
