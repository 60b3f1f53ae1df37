"""Ensemble plans: which members to train and what differs between them.

A factor names what varies between the members of one group; everything else is held fixed:

- ``seed`` — initialisation, data order and augmentation seeds (``seed:init``, ``seed:data``,
  ``seed:augment`` or ``seed:init+data`` vary a subset); arithmetic is IEEE.
- ``mca-rr`` / ``mca-sr`` / ``mca-ud`` — op-level stochastic arithmetic (``harness.perturb``) with
  member-specific engine seeds; every other seed is the baseline's.
- ``kernel-rr`` / ``kernel-sr`` — the instrumented conv/batchnorm kernels (``harness.kernels``).

The ``baseline`` member is the unperturbed run (member 0's seeds, IEEE) every group is compared to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from harness.errors import InputError
from harness.perturb.modes import Mode
from harness.train.config import KERNEL_MODES, Engine

SEED_FACTORS = ("init", "data", "augment")
#: the prefix of an arithmetic factor -> its engine (``mca-sr``: op-level sr)
FACTOR_ENGINES = {"mca": Engine.OP, "kernel": Engine.KERNEL}
#: every arithmetic factor, ``<prefix>-<mode>``, for each perturbing mode its engine runs
ARITHMETIC_FACTORS = tuple(
    f"{prefix}-{mode.value}"
    for prefix, engine in FACTOR_ENGINES.items()
    for mode in Mode
    if mode is not Mode.IEEE and (engine is Engine.OP or mode in KERNEL_MODES)
)


@dataclass(frozen=True)
class MemberSpec:
    """One member: its name, factor, seeds and arithmetic."""

    name: str
    factor: str
    member_index: int
    vary: tuple[str, ...] = ()
    mode: Mode = Mode.IEEE
    engine: Engine = Engine.NONE
    mca_seed: int = 0
    precision: int | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["vary"] = list(self.vary)
        d["mode"], d["engine"] = self.mode.value, self.engine.value
        return d


def parse_factor(text: str) -> tuple[str, tuple[str, ...], Mode, Engine]:
    """``"seed:init+data"`` -> (factor name, varied seeds, mode, engine)."""
    text = text.strip().lower()
    if text.startswith("seed"):
        _, _, subset = text.partition(":")
        vary = tuple(subset.split("+")) if subset else SEED_FACTORS
        bad = [v for v in vary if v not in SEED_FACTORS]
        if bad:
            raise InputError(f"seed factor parts must be among {list(SEED_FACTORS)}, got {bad}")
        name = "seed" if not subset else "seed-" + "".join(v[0] for v in vary)
        return name, vary, Mode.IEEE, Engine.NONE
    if text in ARITHMETIC_FACTORS:
        prefix, mode = text.split("-")
        return text, (), Mode(mode), FACTOR_ENGINES[prefix]
    raise InputError(
        f"factor must be 'seed', 'seed:<init|data|augment>[+...]' or one of {list(ARITHMETIC_FACTORS)}, "
        f"got {text!r}"
    )


def plan_ensemble(factors: dict[str, int], precision: int | None = None) -> list[MemberSpec]:
    """Members for ``{factor: size}`` plus the baseline, in training order (baseline first)."""
    if not factors:
        raise InputError("at least one factor is needed, e.g. {'seed': 5}")
    members = [MemberSpec(name="baseline", factor="baseline", member_index=0)]
    for text, size in factors.items():
        if size < 2:
            raise InputError(
                f"factor {text!r} needs at least 2 members to measure agreement, got {size}"
            )
        name, vary, mode, engine = parse_factor(text)
        for k in range(1, size + 1):
            members.append(
                MemberSpec(
                    name=f"{name}-{k:02d}",
                    factor=name,
                    member_index=k if vary else 0,
                    vary=vary,
                    mode=mode,
                    engine=engine,
                    mca_seed=k if engine is not Engine.NONE else 0,
                    precision=precision if engine is not Engine.NONE else None,
                )
            )
    return members
