"""Harness errors: each carries a one-line message that says what went wrong and what to do.

Why: the product rule is ONE line + a non-zero exit for bad input, never a stack trace. The
CLI prints ``str(err)`` and exits with ``err.exit_code``; library callers can catch by type.
"""

from __future__ import annotations

# Exit codes (documented in docs/HARNESS.md).
EXIT_OK = 0
EXIT_BAD_INPUT = 2       # missing/corrupt model, missing binary, bad flags, unreachable adb
EXIT_PARTIAL = 3         # some devices/jobs failed, the others finished
EXIT_ALL_FAILED = 4      # nothing could be measured


class HarnessError(Exception):
    """Base class. ``str(e)`` is the one line shown to the user."""

    exit_code = EXIT_BAD_INPUT


class AdbUnavailable(HarnessError):
    """No adb server could be reached or started."""


class AdbTimeout(HarnessError):
    """A call to the phone did not answer within its timeout tier."""

    exit_code = EXIT_PARTIAL


class DeviceNotFound(HarnessError):
    """A --device value matched no attached phone."""


class DeviceUnavailable(HarnessError):
    """The phone is attached but offline / unauthorized, or went away mid-run."""

    exit_code = EXIT_PARTIAL

    def __init__(self, serial: str, state: str, hint: str = "") -> None:
        self.serial, self.state = serial, state
        hints = {
            "unauthorized": "unlock it and accept the 'Allow USB debugging?' prompt",
            "offline": "replug the cable or run 'adb reconnect'; results so far are kept",
            "absent": "it was disconnected; reattach it and re-run with --resume",
        }
        super().__init__(f"device {serial} is {state}: {hint or hints.get(state, 'check adb')}")


class PushError(HarnessError):
    """A file could not be copied to the phone."""

    exit_code = EXIT_PARTIAL


class BenchmarkFailed(HarnessError):
    """benchmark_model ran but exited non-zero or printed no timings."""

    exit_code = EXIT_PARTIAL

    def __init__(self, message: str, returncode: int | None = None, output: str = "") -> None:
        self.returncode, self.output = returncode, output
        super().__init__(message)


class BinaryMissing(HarnessError):
    """No benchmark_model binary was given or found."""


class ModelInvalid(HarnessError):
    """A .tflite file is missing or is not a TFLite flatbuffer."""


class NpuSetupError(HarnessError):
    """--delegate npu without LiteRT's dispatch libraries, or a model/delegate mismatch
    (a compiled model off the NPU, a plain model on it, a compiled model on the desktop)."""


class LogParseError(HarnessError):
    """A saved log holds no benchmark_model timings."""
