"""Training configuration: everything that decides a run's numbers, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

from harness.enums import choices, parse_enum
from harness.errors import InputError, check_choice
from harness.kernels import KernelMode
from harness.models.fastsurfer import PRESETS
from harness.perturb.modes import Mode
from harness.perturb.rng import splitmix64
from harness.perturb.seeds import SeedPlan
from harness.train.schedule import PRESET_SCHEDULE, Schedule, check_milestones

VIEWS = ("axial", "coronal", "sagittal")
DEVICES = ("cpu", "cuda")


class Engine(Enum):
    """Where a run's stochastic arithmetic happens."""

    NONE = "none"  # plain torch
    OP = "op"  # harness.perturb.StochasticArithmetic around every step
    KERNEL = "kernel"  # the instrumented conv/batchnorm kernels of harness.kernels

    @classmethod
    def parse(cls, value: Engine | str) -> Engine:
        return parse_enum(cls, value, "engine")


#: the modes the instrumented kernels are compiled for
KERNEL_MODES = tuple(Mode(value) for value in choices(KernelMode))


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does.

    Parameters
    ----------
    views : tuple of str
        Views to train (one network each), subset of axial, coronal, sagittal.
    preset : {"full", "small", "tiny"}
        Network size (:func:`harness.models.fastsurfer_config`).
    epochs, batch_size : int
        v1: 30 epochs, batch 16.
    lr, weight_decay : float
        Adam (v1: 0.01, 1e-4).
    schedule : Schedule or str, optional
        Learning-rate schedule (:mod:`harness.train.schedule`); None: the preset's
        (:data:`~harness.train.schedule.PRESET_SCHEDULE`: v1 for full and tiny, milestones for
        small).
    step_size : int
        v1 schedule: multiply by ``gamma`` every ``step_size`` epochs (v1: 5).
    gamma : float, optional
        Multiplier of the v1 and milestone schedules; None: 0.3 (v1) or 0.1 (milestones).
    milestones : tuple of float
        Milestone schedule: fractions of the run at which the rate is multiplied by ``gamma``.
    cycles : int
        Cosine schedule: warm-restart cycles over the run.
    min_lr_ratio : float
        Cosine schedule: lowest rate as a fraction of ``lr``.
    mode : Mode or {"ieee", "rr", "sr", "ud"}
        Arithmetic of the forward, backward and optimizer step.
    precision : int, optional
        Virtual precision t of rr/sr (None: the dtype's own).
    engine : Engine or {"none", "op", "kernel"}
        ``op``: :class:`harness.perturb.StochasticArithmetic` around every step; ``kernel``: the
        instrumented conv/BN kernels of :mod:`harness.kernels` (ieee, rr, sr); ``none``: plain
        torch (forced when ``mode`` is ieee and engine is op).
    seeds : SeedPlan
        Initialisation, data-order and augmentation seeds.
    mca_seed : int
        Seed of the perturbation streams (epoch ``e`` uses :meth:`epoch_seed`).
    device : {"cpu", "cuda"}
    augment : bool
        v1 pad-8 random-crop augmentation.
    """

    views: tuple[str, ...] = ("axial",)
    preset: str = "full"
    epochs: int = 30
    batch_size: int = 16
    lr: float = 0.01
    weight_decay: float = 1e-4
    schedule: Schedule | str | None = None
    step_size: int = 5
    gamma: float | None = None
    milestones: tuple[float, ...] = (2 / 3,)
    cycles: int = 1
    min_lr_ratio: float = 0.0
    mode: Mode | str = Mode.IEEE
    precision: int | None = None
    engine: Engine | str = Engine.OP
    seeds: SeedPlan = field(default_factory=lambda: SeedPlan.derive(0, 0, ()))
    mca_seed: int = 0
    device: str = "cpu"
    augment: bool = True

    def __post_init__(self):
        views = tuple(self.views)
        if not views or len(set(views)) != len(views):
            raise InputError(f"views must be a non-empty list without repeats, got {list(views)}")
        for view in views:
            check_choice("view", view, VIEWS)
        object.__setattr__(self, "views", views)
        check_choice("preset", self.preset, tuple(PRESETS))
        object.__setattr__(self, "mode", Mode.parse(self.mode))
        object.__setattr__(self, "engine", Engine.parse(self.engine))
        check_choice("device", self.device, DEVICES)
        self._resolve_schedule()
        for name in ("epochs", "batch_size", "step_size", "cycles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0 or self.weight_decay < 0 or not 0 < self.gamma <= 1:
            raise InputError(
                "lr must be > 0, weight_decay >= 0 and gamma in (0, 1], got "
                f"{self.lr}, {self.weight_decay}, {self.gamma}"
            )
        if not 0 <= self.min_lr_ratio < 1:
            raise InputError(f"min_lr_ratio must be in [0, 1), got {self.min_lr_ratio!r}")
        if self.schedule is Schedule.COSINE and self.cycles > self.epochs:
            raise InputError(
                f"cycles must be <= epochs ({self.epochs}) for the cosine schedule, got "
                f"{self.cycles}"
            )
        if self.precision is not None and (
            not isinstance(self.precision, int) or not 1 <= self.precision <= 53
        ):
            raise InputError(
                f"precision must be an integer in [1, 53] or None, got {self.precision!r}"
            )
        mode, engine = self.mode, self.engine
        if mode is Mode.IEEE and engine is Engine.OP:
            object.__setattr__(self, "engine", Engine.NONE)
        if mode is not Mode.IEEE and engine is Engine.NONE:
            raise InputError(f"mode {mode.value!r} needs engine 'op' or 'kernel', got 'none'")
        if engine is Engine.KERNEL and mode not in KERNEL_MODES:
            raise InputError(
                f"engine 'kernel' supports modes {[m.value for m in KERNEL_MODES]}, "
                f"got {mode.value!r}"
            )
        if engine is Engine.KERNEL and self.precision is not None:
            raise InputError(
                "engine 'kernel' rounds at the working precision only; precision must be None, "
                f"got {self.precision}"
            )

    def _resolve_schedule(self) -> None:
        schedule = self.schedule
        schedule = PRESET_SCHEDULE[self.preset] if schedule is None else Schedule.parse(schedule)
        object.__setattr__(self, "schedule", schedule)
        if self.gamma is None:
            object.__setattr__(self, "gamma", 0.1 if schedule is Schedule.MILESTONES else 0.3)
        object.__setattr__(self, "milestones", check_milestones(self.milestones))

    def epoch_seed(self, epoch: int) -> int:
        """Perturbation seed of epoch ``epoch`` (1-based): streams restart every epoch, so a
        resumed run needs no engine state."""
        return splitmix64(splitmix64(self.mca_seed) ^ epoch) & 0xFFFFFFFF

    def to_dict(self) -> dict:
        record = asdict(self)
        record["views"] = list(self.views)
        record["mode"] = self.mode.value
        record["engine"] = self.engine.value
        record["schedule"] = self.schedule.value
        record["milestones"] = list(self.milestones)
        record["seeds"] = self.seeds.to_dict()
        return record

    @classmethod
    def from_dict(cls, record: dict) -> TrainConfig:
        fields = dict(record)
        fields["views"] = tuple(fields["views"])
        fields["milestones"] = tuple(fields.get("milestones", (2 / 3,)))
        fields["seeds"] = SeedPlan.from_dict(fields["seeds"])
        return cls(**fields)
