"""Everything a run needs to continue exactly where it stopped, written so a kill cannot tear it.

A checkpoint is one folder, `ckpt/step-NNNNNNNN/`: the TensorFlow checkpoint (weights, Adam's
moments and step counter, EMA weights) plus `state.json` (the run's training settings, the
sampler's state, seconds trained). It is written under a temporary name and renamed into place;
only then does `ckpt/latest.json` (itself written to a temp file and renamed) point at it. A kill
at any moment leaves the previous checkpoint intact. Run folders from before this layout (a
`tf.train.CheckpointManager` `ckpt/checkpoint` file) still resume.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

from deploy._files import atomic_write
from models._keras import keras, tf

KEEP = 2  # checkpoints kept (the newest one may be cut short only by a power loss)
_STEP_DIR = re.compile(r"^step-(\d{8})$")


class Ema:
    """Exponential moving average of a model's weights (decay warmed up as in tf.train.ExponentialMovingAverage
    with num_updates, so early averages are not dominated by the random init). Checkpoint `.module`."""

    def __init__(self, model: keras.Model, decay: float):
        self.decay = float(decay)
        self._weights = list(model.weights)
        self.shadow = [tf.Variable(w, trainable=False, name=f"ema_{i}") for i, w in enumerate(self._weights)]
        self.module = tf.Module(name="ema")
        self.module.shadow = self.shadow

    def update(self, step: tf.Tensor) -> None:
        step = tf.cast(step, tf.float32)
        d = tf.minimum(self.decay, (1.0 + step) / (10.0 + step))
        for s, w in zip(self.shadow, self._weights):
            s.assign(d * s + (1.0 - d) * tf.cast(w, s.dtype))

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own (bit-exact) after."""
        own = [w.numpy() for w in self._weights]
        for w, s in zip(self._weights, self.shadow):
            w.assign(s)
        try:
            yield
        finally:
            for w, v in zip(self._weights, own):
                w.assign(v)


class RunCheckpoints:
    """Atomic checkpoints of a tf.train.Checkpoint plus a JSON state, in `run/ckpt/`."""

    def __init__(self, run: Path, keep: int = KEEP):
        self.dir, self.keep = run / "ckpt", keep

    def latest(self) -> Optional[tuple[str, dict]]:
        """(checkpoint prefix, state) of the newest checkpoint; state {} for a legacy run folder."""
        pointer = self.dir / "latest.json"
        if pointer.is_file():
            folder = self.dir / json.loads(pointer.read_text())["dir"]
            return str(folder / "ckpt"), json.loads((folder / "state.json").read_text())
        legacy = tf.train.latest_checkpoint(str(self.dir)) if self.dir.is_dir() else None
        return (legacy, {}) if legacy else None

    def restore(self, ckpt: tf.train.Checkpoint) -> Optional[dict]:
        """Load the newest checkpoint into `ckpt`; its state, or None for a new run."""
        found = self.latest()
        if found is None:
            return None
        prefix, state = found
        status = ckpt.read(prefix) if state else ckpt.restore(prefix)
        status.assert_existing_objects_matched()
        return state

    def save(self, ckpt: tf.train.Checkpoint, step: int, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"step-{step:08d}"
        final, tmp = self.dir / name, self.dir / f".{name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        ckpt.write(str(tmp / "ckpt"))
        (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)  # a copy a killed run wrote but never pointed to
        os.rename(tmp, final)
        atomic_write(self.dir / "latest.json", json.dumps({"dir": name, "step": step}) + "\n")
        self._prune()

    def _prune(self) -> None:
        steps = sorted(p for p in self.dir.iterdir() if p.is_dir() and _STEP_DIR.match(p.name))
        for old in steps[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        for tmp in self.dir.glob(".step-*.tmp"):  # left by a killed run (ours is renamed by now)
            shutil.rmtree(tmp, ignore_errors=True)


class StopRequest:
    """SIGINT / SIGTERM ask the loop to checkpoint and stop after the current step; a second
    SIGINT interrupts at once. Outside the main thread (no signals there) it never fires."""

    def __init__(self) -> None:
        self.signal: Optional[str] = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
