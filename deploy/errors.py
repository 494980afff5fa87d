"""One error base for the library: what the CLIs catch and print as one line.

Anything else that escapes the library is our bug and keeps its traceback. Library messages
describe the problem in library terms; the CLI glue (deploy/commands) adds flag names.
"""
from __future__ import annotations


class SrdeployError(Exception):
    """Bad input or an unusable environment: the message says what went wrong and what to do."""


class UserInputError(SrdeployError, ValueError):
    """A value, file or combination of options that cannot be used as given."""
