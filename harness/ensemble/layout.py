"""Where an ensemble directory keeps things: the paths come from :mod:`harness.runs.layout`;
this module adds member names and the list of trained members."""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import InputError
from harness.runs.catalogue import PREDICTION
from harness.runs.layout import (  # noqa: F401 (re-exported: the ensemble's layout in one place)
    BASELINE,
    analysis_dir,
    member_dir,
    members_dir,
    prediction_path,
    probabilities_path,
)

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


def list_members(ens: Path) -> list[str]:
    root = members_dir(ens)
    if not root.is_dir():
        raise InputError(f"{ens} is not an ensemble directory: {root} is missing")
    return sorted(p.name for p in root.iterdir() if (p / PREDICTION.parent).is_dir())
