"""Benchmark .tflite models on Android phones over adb (or on the desktop as a fallback).

Never imports ``deploy`` or ``models``: they meet this package only through the result JSON
(schema in docs/HARNESS.md).
"""

# Run a benchmark session (what tools/adb_bench.py does).
from android_harness.api import Options, run
from android_harness.session import BenchReport, BenchRequest, run_benchmarks

# Configure one benchmark_model invocation.
from android_harness.config import BenchConfig

# Parse benchmark_model output without a phone.
from android_harness.parser import BenchStats, parse

# Read the records.
from android_harness.results import SCHEMA_VERSION, read_records

# Errors (each is one user-facing line).
from android_harness.errors import HarnessError

__all__ = ["Options", "run", "BenchReport", "BenchRequest", "run_benchmarks", "BenchConfig",
           "BenchStats", "parse", "SCHEMA_VERSION", "read_records", "HarnessError"]
