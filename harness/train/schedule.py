"""Learning-rate schedules, as pure functions of the epoch and the run's length.

FastSurfer v1 multiplies the rate by 0.3 every 5 epochs (:attr:`Schedule.V1`, torch ``StepLR``).
That schedule assumes thousands of optimizer steps per epoch (the published 256^3 training set);
with the ~40 steps per epoch of a small cohort the rate is ~0 before the network has learned to
segment. The two other schedules are defined relative to the run, so they mean the same at any
dataset size:

- :attr:`Schedule.MILESTONES` — multiply by ``gamma`` once each completed-epoch fraction in
  ``milestones`` is reached: ``lr_e = lr * gamma ** #{f : e >= round(f * epochs)}`` for the
  epoch after ``e`` completed epochs (``milestones=(2/3,)``, ``gamma=0.1`` over 15 epochs: 0.01
  for epochs 1-10, 0.001 for 11-15);
- :attr:`Schedule.COSINE` — cosine annealing with warm restarts as FastSurfer v2
  (``CosineAnnealingWarmRestarts``), with ``cycles`` equal cycles over the run:
  ``lr_e = lr * (r + (1 - r) * (1 + cos(pi * t)) / 2)``, ``t = (e mod T) / T``,
  ``T = epochs / cycles``, ``r = min_lr_ratio``.

The rate changes once per epoch (after each epoch's checkpoint), so a resumed run needs only the
epoch count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum

from harness.enums import parse_enum
from harness.errors import InputError


class Schedule(str, Enum):
    """How the learning rate evolves over a run."""

    V1 = "v1"
    MILESTONES = "milestones"
    COSINE = "cosine"

    @classmethod
    def parse(cls, value: str | Schedule) -> Schedule:
        """``"cosine"`` -> :attr:`COSINE`; an error naming the choices otherwise."""
        return parse_enum(cls, value, "schedule")


#: schedule a preset trains with unless told otherwise: the published nets keep v1
PRESET_SCHEDULE = {"full": Schedule.V1, "tiny": Schedule.V1, "small": Schedule.MILESTONES}


def check_milestones(milestones: Sequence[float]) -> tuple[float, ...]:
    """Fractions of the run in (0, 1), strictly increasing."""
    values = tuple(float(m) for m in milestones)
    if not values or any(not 0 < m < 1 for m in values) or list(values) != sorted(set(values)):
        raise InputError(
            f"milestones must be strictly increasing fractions of the run in (0, 1), got "
            f"{list(values)}"
        )
    return values


def milestone_factor(
    completed: int, epochs: int, milestones: Sequence[float], gamma: float
) -> float:
    """Rate multiplier of the epoch that follows ``completed`` epochs (milestone schedule)."""
    passed = sum(completed >= round(f * epochs) for f in milestones)
    return gamma**passed


def cosine_factor(completed: int, epochs: int, cycles: int, min_lr_ratio: float) -> float:
    """Rate multiplier of the epoch that follows ``completed`` epochs (cosine, warm restarts)."""
    period = epochs / cycles
    phase = (completed % period) / period
    return min_lr_ratio + (1 - min_lr_ratio) * (1 + math.cos(math.pi * phase)) / 2
