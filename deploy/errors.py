"""One error tree for the library: what the CLIs catch and print as one line.

    SrdeployError                      (root; defined in models/errors.py, the bottom layer)
    ├── ModelError (ValueError)        the zoo: unknown model/scale, bad or missing weights
    └── UserInputError (ValueError)    a value, file or combination that cannot be used
        └── every stage's own error (PolicyError, ConversionError, OutputExistsError, ...)
    SrdeployError also: BudgetImpossible (exit 3), CompileError, NpuToolsMissingError, ...

Anything else that escapes the library is our bug and keeps its traceback. Library messages
describe the problem in library terms and carry fields (`option`, `file`, `layer`, `value`); the
CLI glue (deploy/commands/cli.py) words them with flag names from those fields.
"""
from __future__ import annotations

from models.errors import ModelError, SrdeployError


class UserInputError(SrdeployError, ValueError):
    """A value, file or combination of options that cannot be used as given."""


class DataError(UserInputError):
    """An image or folder that cannot be used; the message says which file and what to do."""


class MissingDataError(DataError):
    """A requested data source (a folder, the full-size Debian photos, a shipped photo) is not
    there; the message says which and how to get it. Nothing is substituted for it."""


def choice_error(option: str, value, allowed) -> UserInputError:
    """`option must be one of a, b, not 'x'`: an unknown enum value, with its fields."""
    return UserInputError(f"{option} must be one of {', '.join(map(str, allowed))}, not '{value}'",
                          option=option, value=value)


__all__ = ["DataError", "MissingDataError", "ModelError", "SrdeployError", "UserInputError", "choice_error"]
