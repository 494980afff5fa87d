"""The root of srdeploy's one error tree, and the zoo's error.

`SrdeployError` is defined here, at the bottom of the import graph (models/ imports nothing from
deploy/), so the zoo's `ModelError` belongs to the same tree as every deploy error;
`deploy.errors` re-exports both and defines the rest. The CLIs catch `SrdeployError` (and
file-system `OSError`s) and print one line; anything else is our bug and keeps its traceback.
"""
from __future__ import annotations

from typing import Any, Optional


class SrdeployError(Exception):
    """Bad input or an unusable environment: the message says what went wrong and what to do.

    The message is in library terms (parameter names, not command-line flags). Fields, where
    they apply, let a caller or the CLI word it without parsing the text:

    Attributes:
        option: the parameter (and CLI flag) the error is about, e.g. `oracle`; the message
            then starts with it, and the CLI writes it as `--oracle`.
        file: the file or folder concerned.
        layer: the model layer (policy key) concerned.
        value: the offending value.
        exit_code: the exit status a CLI gives for it (2: bad input; 3: no answer exists).
    """
    exit_code = 2

    def __init__(self, message: str = "", *, option: Optional[str] = None, file: Any = None,
                 layer: Optional[str] = None, value: Any = None):
        super().__init__(message)
        self.option, self.file, self.layer, self.value = option, file, layer, value


class ModelError(SrdeployError, ValueError):
    """A model request that cannot be served (unknown name/scale, missing or bad weights, a
    model of the wrong Keras flavour)."""
