"""Seed plans: every random factor of an ensemble member drawn once, recorded, replayable.

A member's seeds are derived (SplitMix64) from ``(base_seed, factor, member)``; factors that are
not varied use member 0's value, so an ensemble that varies only ``data`` shares one
initialisation. ``mca`` seeds the stochastic-arithmetic engine
(:class:`harness.perturb.StochasticArithmetic`).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from harness.errors import InputError
from harness.perturb.rng import splitmix64

#: factors a seed plan can vary; ``"all"`` means every one of them.
FACTORS: tuple[str, ...] = ("init", "data", "augment", "mca")
_SCHEMA = 1


def _check_int(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _parse_vary(vary: str | Iterable[str]) -> frozenset[str]:
    names = [vary] if isinstance(vary, str) else list(vary)
    if "all" in names:
        return frozenset(FACTORS)
    unknown = [n for n in names if n not in FACTORS]
    if unknown:
        raise InputError(f"vary must contain only {list(FACTORS)} or 'all', got {unknown!r}")
    return frozenset(names)


def derive_seed(base_seed: int, factor: str, member: int) -> int:
    """A 32-bit seed for ``factor`` of ``member`` (valid for python, numpy and torch)."""
    key = splitmix64(base_seed)
    key = splitmix64(key ^ (FACTORS.index(factor) + 1))
    return splitmix64(key ^ member) & 0xFFFFFFFF


@dataclass(frozen=True)
class SeedPlan:
    """The seeds of one ensemble member.

    Build with :meth:`derive`; store with :meth:`to_dict`; replay with :meth:`from_dict`.
    """

    member: int
    base_seed: int
    vary: frozenset[str]
    init: int
    data: int
    augment: int
    mca: int

    @classmethod
    def derive(cls, member: int, base_seed: int = 0, vary: str | Iterable[str] = "all") -> SeedPlan:
        """Derive member ``member``'s seeds; factors outside ``vary`` keep member 0's seeds."""
        _check_int("member", member)
        _check_int("base_seed", base_seed)
        varied = _parse_vary(vary)
        seeds = {f: derive_seed(base_seed, f, member if f in varied else 0) for f in FACTORS}
        return cls(member=member, base_seed=base_seed, vary=varied, **seeds)

    def seed(self, factor: str) -> int:
        """The seed of ``factor`` (one of :data:`FACTORS`)."""
        if factor not in FACTORS:
            raise InputError(f"factor must be one of {list(FACTORS)}, got {factor!r}")
        return getattr(self, factor)

    def generator(self, factor: str, device: str | torch.device = "cpu") -> torch.Generator:
        """A fresh ``torch.Generator`` seeded for ``factor``."""
        gen = torch.Generator(device=device)
        gen.manual_seed(self.seed(factor))
        return gen

    def to_dict(self) -> dict:
        """JSON-serialisable record (stored in the member's manifest)."""
        return {
            "schema_version": _SCHEMA,
            "member": self.member,
            "base_seed": self.base_seed,
            "vary": sorted(self.vary),
            **{f: getattr(self, f) for f in FACTORS},
        }

    @classmethod
    def from_dict(cls, record: dict) -> SeedPlan:
        """Rebuild a plan from :meth:`to_dict`'s record, checking every field."""
        missing = [k for k in ("member", "base_seed", "vary", *FACTORS) if k not in record]
        if missing:
            raise InputError(f"seed plan record is missing {missing}")
        fields = {f: _check_int(f, record[f]) for f in ("member", "base_seed", *FACTORS)}
        return cls(vary=_parse_vary(record["vary"]), **fields)


@contextlib.contextmanager
def torch_seed(seed: int):
    """Seed torch's CPU generator for the block only, restoring the caller's state after.

    For draws that take no generator, such as the initialisation inside ``nn.Module``
    constructors; library code uses this rather than :func:`seed_everything`, which is for
    scripts and leaves the global generators seeded.
    """
    _check_int("seed", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and every CUDA device)."""
    import numpy as np

    _check_int("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global RNG is the point
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


_CUBLAS = "CUBLAS_WORKSPACE_CONFIG"


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True, warn_only: bool = False) -> Iterator[None]:
    """Run a block with torch's deterministic algorithms on (or off); restore settings on exit.

    Sets ``torch.use_deterministic_algorithms``, ``cudnn.deterministic``, ``cudnn.benchmark``
    (off when deterministic) and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (needed by cuBLAS for
    reproducible results) if unset; all four are restored, even on error.
    """
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        os.environ.get(_CUBLAS),
    )
    try:
        if enabled and saved[4] is None:
            os.environ[_CUBLAS] = ":4096:8"
        torch.use_deterministic_algorithms(bool(enabled), warn_only=warn_only)
        torch.backends.cudnn.deterministic = bool(enabled)
        torch.backends.cudnn.benchmark = False if enabled else saved[3]
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic = saved[2]
        torch.backends.cudnn.benchmark = saved[3]
        if saved[4] is None:
            os.environ.pop(_CUBLAS, None)
        else:
            os.environ[_CUBLAS] = saved[4]
