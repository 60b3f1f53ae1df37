"""Brain-age regression on FreeSurfer tables, with numerically-perturbed ensembles as optional
data augmentation.

:func:`evaluate_table` takes a DataFrame (one row per subject) and returns a
:class:`BrainAgeResults`. Readers (:mod:`~harness.brainage.io`) turn ensemble directories, per-member tables or aseg.stats
files into a validated :class:`BrainAgeData`; :mod:`~harness.brainage.features` builds (optionally
ICV-normalised) features; :mod:`~harness.brainage.protocol` runs the subject-level cross-validated
augmentation protocol with its controls; :func:`run_brainage` writes tables and figures.
"""

from harness.brainage.api import BrainAgeResults, evaluate_table
from harness.brainage.features import IcvNormalization, build_features, icv_proxy
from harness.brainage.io import (
    BrainAgeData,
    parse_aseg_stats,
    read_aseg_dir,
    read_ensemble,
    read_member_tables,
    read_participants,
    read_table,
)
from harness.brainage.protocol import Evaluation, ProtocolConfig, ProtocolResult, run_protocol
from harness.brainage.regressors import (
    BrainAgeRegressor,
    RegressorKind,
    parse_params,
    parse_regressors,
)
from harness.brainage.run import run_brainage
from harness.brainage.tables import FeatureSpec, TableColumns

__all__ = [
    "BrainAgeData",
    "BrainAgeRegressor",
    "BrainAgeResults",
    "Evaluation",
    "FeatureSpec",
    "IcvNormalization",
    "ProtocolConfig",
    "ProtocolResult",
    "RegressorKind",
    "TableColumns",
    "build_features",
    "evaluate_table",
    "icv_proxy",
    "parse_aseg_stats",
    "parse_params",
    "parse_regressors",
    "read_aseg_dir",
    "read_ensemble",
    "read_member_tables",
    "read_participants",
    "read_table",
    "run_brainage",
    "run_protocol",
]
