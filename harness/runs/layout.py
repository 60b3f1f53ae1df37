"""Where an ensemble directory keeps its members and its analysis (docs/CONTRACTS.md).

``ENS/members/<member>/`` are training run directories (:data:`harness.runs.RunKind.TRAIN`),
``ENS/analysis/`` is the ensemble-analysis run; the unperturbed member is named
:data:`BASELINE`.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.runs.catalogue import PREDICTION, PROBABILITIES

#: name of the unperturbed ensemble member
BASELINE = "baseline"
MEMBERS = "members"
ANALYSIS = "analysis"


def members_dir(ens: str | os.PathLike) -> Path:
    return Path(ens) / MEMBERS


def member_dir(ens: str | os.PathLike, member: str) -> Path:
    return members_dir(ens) / member


def analysis_dir(ens: str | os.PathLike) -> Path:
    return Path(ens) / ANALYSIS


def prediction_path(ens: str | os.PathLike, member: str, subject: str) -> Path:
    """A member's predicted label map of ``subject``."""
    return PREDICTION.path(member_dir(ens, member), subject=subject)


def probabilities_path(ens: str | os.PathLike, member: str, subject: str) -> Path:
    """A member's class probabilities of ``subject`` (present when the ensemble saved them)."""
    return PROBABILITIES.path(member_dir(ens, member), subject=subject)
