"""Brain-age regression with numerically-perturbed ensembles as data augmentation.

Readers (:mod:`~harness.brainage.io`) turn ensemble directories, per-member tables or aseg.stats
files into a validated :class:`BrainAgeData`; :mod:`~harness.brainage.features` builds (optionally
ICV-normalised) features; :mod:`~harness.brainage.protocol` runs the subject-level cross-validated
augmentation protocol with its controls; :func:`run_brainage` writes tables and figures.
"""

from harness.brainage.features import IcvNormalization, build_features, icv_proxy
from harness.brainage.io import (
    BrainAgeData,
    parse_aseg_stats,
    read_aseg_dir,
    read_ensemble,
    read_member_tables,
    read_participants,
)
from harness.brainage.protocol import ProtocolConfig, ProtocolResult, run_protocol
from harness.brainage.regressors import BrainAgeRegressor, RegressorKind, parse_regressors
from harness.brainage.run import run_brainage

__all__ = [
    "BrainAgeData",
    "BrainAgeRegressor",
    "IcvNormalization",
    "ProtocolConfig",
    "ProtocolResult",
    "RegressorKind",
    "build_features",
    "icv_proxy",
    "parse_aseg_stats",
    "parse_regressors",
    "read_aseg_dir",
    "read_ensemble",
    "read_member_tables",
    "read_participants",
    "run_brainage",
    "run_protocol",
]
