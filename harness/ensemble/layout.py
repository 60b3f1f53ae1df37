"""Where an ensemble directory keeps things (docs/CONTRACTS.md)."""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import InputError

BASELINE = "baseline"
_MEMBER_RE = re.compile(r"^(?P<factor>[a-z]+(?:-[a-z]+)?)-(?P<index>\d+)$")


def member_factor(name: str) -> str:
    """Factor of a member from its name: ``seed-03`` -> ``seed``, ``mca-sr-02`` -> ``mca-sr``."""
    if name == BASELINE:
        return BASELINE
    match = _MEMBER_RE.match(name)
    if not match:
        raise InputError(
            f"member name must be 'baseline' or '<factor>-<index>' (e.g. seed-01, mca-sr-02), got {name!r}"
        )
    return match.group("factor")


def members_dir(ens: Path) -> Path:
    return Path(ens) / "members"


def analysis_dir(ens: Path) -> Path:
    return Path(ens) / "analysis"


def prediction_path(ens: Path, member: str, subject: str) -> Path:
    return members_dir(ens) / member / "predictions" / f"{subject}_seg.nii.gz"


def list_members(ens: Path) -> list[str]:
    root = members_dir(ens)
    if not root.is_dir():
        raise InputError(f"{ens} is not an ensemble directory: {root} is missing")
    return sorted(p.name for p in root.iterdir() if (p / "predictions").is_dir())
