"""Shared CLI plumbing: turn library errors into one line on stderr and a non-zero exit."""
from __future__ import annotations

import re
import sys
from typing import Callable, TypeVar

from deploy.errors import SrdeployError

T = TypeVar("T")

#: Exceptions that are the user's input or environment, not our bug: print one line, exit 2
#: (or the error's own `exit_code`). Every library error derives from SrdeployError; OSError is
#: the file system's (a missing, unreadable or unwritable path). Anything else (a plain
#: ValueError/TypeError included) is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (SrdeployError, OSError)


def wording(e: BaseException) -> str:
    """A library error in command-line terms, from its fields: the parameter it is about
    (`option`, which starts the message) becomes its flag (`oracle must ...` -> `--oracle
    must ...`), and `name=True` (the Python API's way to say it) becomes `--name`."""
    text = " ".join(str(e).split()) or e.__class__.__name__
    option = getattr(e, "option", None)
    if option and (text == option or text.startswith(option + " ")):
        text = "--" + text
    return re.sub(r"\b([a-z][a-z0-9_]*)=True\b", r"--\1", text)


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_cli(fn: Callable[[], T]) -> T:
    """Run `fn`; a user-input error becomes `error: <one line>` and exit code 2."""
    try:
        return fn()
    except KeyboardInterrupt:
        fail("interrupted; rerun the same command to resume where possible", 130)
    except USER_ERRORS as e:
        fail(wording(e), getattr(e, "exit_code", 2))
    raise AssertionError("unreachable")


def define_source_flags() -> None:
    """The flags that say which model a command works on: a zoo model or the user's own."""
    from absl import flags

    from deploy.data.io_convention import CHANNELS, VALUE_RANGES
    flags.disclaim_key_flags()  # these flags are the calling tool's own: its --help lists them
    flags.DEFINE_string("model", "xlsr", "zoo model name (see tools/convert.py --list_models)")
    flags.DEFINE_string("keras_model", None, "or: your own saved Keras model, tf_keras or Keras 3 "
                        "(.h5/.keras/SavedModel, also from model.export())")
    flags.DEFINE_string("float_tflite", None, "or: your own float .tflite from any framework (PyTorch via "
                        "litert-torch, ...), fixed input size, NHWC; per-layer policies name op groups")
    flags.DEFINE_string("custom_objects", None, "--keras_model: a .py file (or module) whose import registers "
                        "the model's custom layers (@keras.saving.register_keras_serializable())")
    flags.DEFINE_enum("channels", "rgb", CHANNELS, "--keras_model input/output channels")
    flags.DEFINE_enum("value_range", "0-1", VALUE_RANGES, "--keras_model input/output value range")
    flags.DEFINE_integer("scale", 3, "upscaling factor")
    from deploy.commands.flag_checks import positive
    positive("scale")
    flags.DEFINE_string("weights", None, "a .h5 weight file (default: the shipped, hash-checked weights)")
    flags.DEFINE_bool("unsafe_deserialization", False, "--keras_model: allow Lambda layers in a .keras "
                      "file (their code runs on load; only for files you trust)")


def source_from_flags(*, weights: bool = True):
    """The ModelSource the flags of define_source_flags name (`weights=False`: untrained)."""
    from absl import flags

    from deploy.convert import sources
    from deploy.convert.api import check_scale
    f = flags.FLAGS
    src = run_cli(lambda: sources.resolve(f.model, f.scale, keras_model=f.keras_model,
                                          weights=f.weights or weights, channels=f.channels,
                                          value_range=f.value_range,
                                          unsafe_deserialization=f.unsafe_deserialization,
                                          float_tflite=f.float_tflite, custom_objects=f.custom_objects))
    run_cli(lambda: check_scale(src))  # --scale vs the model's own shapes, before any work
    return src
