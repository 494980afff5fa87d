"""Learning-rate schedules over a run's --steps, with an optional linear warmup.

`cosine` without warmup is exactly the schedule every shipped recipe was trained with (Keras'
CosineDecay to 1 % of the peak), so those commands still reproduce; `step` halves the rate at
1/2 and 3/4 of the run (EDSR/RCAN style); `constant` is the plain rate. Schedules are functions
of the optimizer's step counter only, so a resumed run continues on the same curve.
"""
from __future__ import annotations

from typing import Sequence

from deploy.errors import UserInputError
from models._keras import keras, tf

SCHEDULES = ("constant", "cosine", "step")
COSINE_FLOOR = 0.01  # the final rate of `cosine`, as a fraction of the peak
STEP_MILESTONES = (0.5, 0.75)  # fractions of --steps where `step` halves the rate


class WarmupPiecewise(keras.optimizers.schedules.LearningRateSchedule):
    """Peak `lr` after a linear warmup, multiplied by 0.5 at each milestone step."""

    def __init__(self, lr: float, warmup: int = 0, milestones: Sequence[int] = ()):
        self.lr, self.warmup, self.milestones = float(lr), int(warmup), [int(m) for m in milestones]

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = tf.constant(self.lr, tf.float32)
        for m in self.milestones:
            rate = tf.where(step >= m, rate * 0.5, rate)
        if self.warmup:
            rate = rate * tf.minimum(1.0, (step + 1.0) / self.warmup)
        return rate

    def get_config(self) -> dict:
        return {"lr": self.lr, "warmup": self.warmup, "milestones": self.milestones}


def make_schedule(kind: str, lr: float, steps: int, warmup: int = 0) -> keras.optimizers.schedules.LearningRateSchedule:
    """The schedule `kind` peaking at `lr` over `steps` optimizer steps (the first `warmup` linear)."""
    if kind not in SCHEDULES:
        raise UserInputError(f"learning-rate schedule {kind!r} is not one of {', '.join(SCHEDULES)}")
    if not 0 <= warmup < steps:
        raise UserInputError(f"warmup ({warmup} steps) must be >= 0 and shorter than the run ({steps} steps)")
    if kind == "cosine":
        if not warmup:  # the legacy schedule, bit for bit
            return keras.optimizers.schedules.CosineDecay(lr, steps, alpha=COSINE_FLOOR)
        return keras.optimizers.schedules.CosineDecay(0.0, steps - warmup, alpha=COSINE_FLOOR,
                                                      warmup_target=lr, warmup_steps=warmup)
    milestones = [round(f * steps) for f in STEP_MILESTONES] if kind == "step" else []
    return WarmupPiecewise(lr, warmup, milestones)
