"""One brain-age evaluation: features, protocol, pooled evaluation, tables and figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.brainage.evaluation import evaluate_by_group, evaluate_predictions
from harness.brainage.features import IcvNormalization, build_features, describe_icv
from harness.brainage.io import BrainAgeData
from harness.brainage.plots import plot_mae_vs_k, plot_predicted_vs_true
from harness.brainage.power import ANCHOR_EFFECT, compare_arms
from harness.brainage.protocol import Evaluation, ProtocolConfig, ProtocolResult, run_protocol
from harness.errors import InputError
from harness.runs import RunDir, RunKind, catalogue


@dataclass
class Evaluated:
    """A protocol result with the pooled evaluation and how the inputs were used."""

    result: ProtocolResult
    evaluation: pd.DataFrame
    comparison: pd.DataFrame
    by_group: pd.DataFrame
    normalization: IcvNormalization
    icv: str
    info: dict = field(default_factory=dict)

    @property
    def results(self) -> pd.DataFrame:
        """Metrics per regressor, augmentation, k and split (results.tsv)."""
        return self.result.results

    @property
    def summary(self) -> pd.DataFrame:
        """Mean and 95% CI over splits (summary.tsv)."""
        return self.result.summary

    @property
    def predictions(self) -> pd.DataFrame:
        """Predicted age of every test subject (predictions.tsv)."""
        return self.result.predictions


def _metadata_counts(data: BrainAgeData) -> dict:
    if data.metadata is None:
        return {}
    return {c: data.metadata[c].value_counts().sort_index().to_dict() for c in data.metadata}


def _sites(data: BrainAgeData) -> np.ndarray:
    if data.metadata is None or "site" not in data.metadata:
        raise InputError("stratify by site needs a site column (--site-column, or 'site')")
    return data.metadata["site"].to_numpy(dtype=str)


def _test_cube(train: BrainAgeData, test: BrainAgeData, train_features, applied):
    """Training features with the test subjects appended (perturbed members NaN for them)."""
    if len(test.members) != 1:
        raise InputError(f"test must be one table (a single member), got {list(test.members)}")
    missing = [r for r in train.regions if r not in test.regions]
    if missing:
        raise InputError(f"test table lacks feature columns of the training table: {missing[:8]}")
    shared = sorted(set(train.subjects) & set(test.subjects))
    if shared:
        raise InputError(
            f"{len(shared)} subject(s) are in both the training and the test table, "
            f"e.g. {shared[:5]}: a held-out test set must not share subjects"
        )
    if applied is IcvNormalization.ETIV and test.etiv is None:
        raise InputError(
            "test table has no ICV column, but the training features are eTIV-normalised"
        )
    order = [test.regions.index(r) for r in train.regions]
    test_features, _ = build_features(test.volumes[:, :, order], applied, test.etiv)
    n_members, n_train, n_regions = train_features.shape
    cube = np.full((n_members, n_train + len(test.subjects), n_regions), np.nan)
    cube[:, :n_train] = train_features
    cube[0, n_train:] = test_features[0]
    split = [(np.arange(n_train), np.arange(n_train, cube.shape[1]))]
    return cube, split


def evaluate_data(
    data: BrainAgeData,
    config: ProtocolConfig,
    normalization: IcvNormalization | str = IcvNormalization.NONE,
    test: BrainAgeData | None = None,
    stratify_site: bool = False,
    progress: bool = True,
) -> Evaluated:
    """Features, protocol and pooled evaluation of ``data`` (and ``test``, a held-out table).

    Parameters
    ----------
    data : BrainAgeData
        Training (K-fold / split: all) subjects; perturbed members optional.
    config : ProtocolConfig
        Protocol settings; ``config.evaluation`` must be ``TEST`` exactly when ``test`` is given.
    normalization : IcvNormalization or str
        ICV normalisation; ``auto`` resolves to ``etiv`` when the input carries eTIV, else
        ``sum``, and says so in :attr:`Evaluated.icv`.
    test : BrainAgeData, optional
        Held-out test subjects (one table, the same feature columns).
    stratify_site : bool
        Cross the age strata with ``data.metadata["site"]`` (K-fold and split).
    progress : bool
        Show a progress bar.
    """
    if (test is not None) != (config.evaluation is Evaluation.TEST):
        raise InputError("a test table is given exactly when evaluation is 'test'")
    requested = IcvNormalization.parse(normalization)
    features, applied = build_features(data.volumes, requested, data.etiv)
    icv = describe_icv(requested, applied, data.icv_source, len(data.regions))
    config.validate(len(data.subjects))
    ages, subjects, splits, sites = data.ages, data.subjects, None, None
    if test is not None:
        features, splits = _test_cube(data, test, features, applied)
        ages = np.concatenate([data.ages, test.ages])
        subjects = (*data.subjects, *test.subjects)
    else:
        sites = _sites(data) if stratify_site else None
    result = run_protocol(features, ages, subjects, config, progress, splits=splits, sites=sites)
    info = {
        "evaluation": config.evaluation.value,
        "n_train": len(data.subjects) if test is not None else None,
        "n_test": len(test.subjects) if test is not None else None,
        "test_fraction": config.test_fraction if config.evaluation is Evaluation.SPLIT else None,
        "stratify_site": stratify_site,
        "tune": config.tune,
        "tuning": result.tuning.to_dict("records"),
        "baselines": ["mean", "median"],
        "features": list(data.regions),
        "excluded_columns": dict(data.excluded),
        "metadata": _metadata_counts(data),
        "test_metadata": _metadata_counts(test) if test is not None else {},
    }
    metadata = [d.metadata for d in (data, test) if d is not None and d.metadata is not None]
    return Evaluated(
        result,
        evaluate_predictions(result.predictions, config.seed),
        compare_arms(result.predictions, config.seed),
        evaluate_by_group(result.predictions, pd.concat(metadata) if metadata else None),
        applied,
        icv,
        info,
    )


def run_brainage(
    data: BrainAgeData,
    out: str | Path,
    config: ProtocolConfig,
    normalization: IcvNormalization | str = IcvNormalization.NONE,
    max_members: int | None = None,
    inputs: dict | None = None,
    progress: bool = True,
    test: BrainAgeData | None = None,
    stratify_site: bool = False,
) -> Evaluated:
    """Run the protocol on ``data`` and write results.tsv, summary.tsv, robustness.tsv,
    predictions.tsv, evaluation.tsv (pooled MAE with bootstrap interval, R², age bias, with the
    mean/median baselines), comparison.tsv (paired per-subject comparison of the arms with the
    power to detect the anchor's effect, :mod:`harness.brainage.power`), tuning.tsv (with
    ``config.tune``), evaluation_by_group.tsv (per site and sex, when known), figures/*.png and
    manifest.json under ``out``.

    Parameters
    ----------
    data : BrainAgeData
        Validated input (see :mod:`harness.brainage.io`).
    out : path-like
        Output run directory.
    config : ProtocolConfig
        Protocol settings.
    normalization : IcvNormalization or str
        ICV normalisation of the volumes.
    max_members : int, optional
        Use only the first N perturbed members (name order).
    inputs : dict, optional
        Description of the inputs, recorded in the manifest.
    progress : bool
        Show a progress bar.
    test : BrainAgeData, optional
        Held-out test table (``config.evaluation`` is ``TEST``).
    stratify_site : bool
        Stratify splits by site as well as age.
    """
    data = data.select_members(max_members)
    requested = IcvNormalization.parse(normalization)
    _, applied = build_features(data.volumes, requested, data.etiv)  # validate before work
    config.validate(len(data.subjects))
    run = RunDir(out, kind=RunKind.BRAINAGE)
    run.start(
        "brainage",
        config={
            "inputs": inputs or {},
            "regressors": [r.value for r in config.regressors],
            "n_splits": config.n_splits,
            "max_combinations": config.max_combinations,
            "seed": config.seed,
            "n_age_bins": config.n_age_bins,
            "gaussian_control": config.gaussian_control,
            "regressor_params": config.regressor_params,
            "icv_normalization": applied.value,
            "icv_requested": requested.value,
            "icv_source": describe_icv(requested, applied, data.icv_source, len(data.regions)),
            "evaluation": config.evaluation.value,
            "test_fraction": config.test_fraction,
            "tune": config.tune,
            "stratify_site": stratify_site,
        },
        data={
            "members": list(data.members),
            "n_subjects": len(data.subjects),
            "regions": list(data.regions),
            "excluded_columns": dict(data.excluded),
            "metadata": _metadata_counts(data),
        },
    )
    with run.failure_recorded():  # failed, with the error, whatever goes wrong
        done = evaluate_data(data, config, requested, test, stratify_site, progress)
        result = done.result
        run.write_table(catalogue.BRAINAGE_RESULTS, result.results)
        run.write_table(catalogue.BRAINAGE_SUMMARY, result.summary)
        run.write_table(catalogue.BRAINAGE_ROBUSTNESS, result.robustness)
        run.write_table(catalogue.BRAINAGE_PREDICTIONS, result.predictions)
        run.write_table(catalogue.BRAINAGE_EVALUATION, done.evaluation)
        run.write_table(catalogue.BRAINAGE_COMPARISON, done.comparison)
        if config.tune:
            run.write_table(catalogue.BRAINAGE_TUNING, result.tuning)
        if not done.by_group.empty:
            run.write_table(catalogue.BRAINAGE_GROUPS, done.by_group)
        plot_mae_vs_k(result.summary, run.file(catalogue.MAE_FIGURE))
        plot_predicted_vs_true(result.predictions, run.file(catalogue.PREDICTED_FIGURE))
    run.finish(anchor_effect_years=ANCHOR_EFFECT, evaluation=done.info)
    return done
