"""Pooled test-set evaluation of brain-age predictions: MAE with a bootstrap interval, R^2, age bias.

Every subject is predicted once per (regressor, augmentation, k): in its own test fold (K-fold),
or as a member of the held-out test set. Pooled over those predictions ``p_i`` of true ages
``y_i`` (n subjects):

* ``MAE = mean_i |p_i - y_i|`` with the 95% percentile bootstrap interval over subjects;
* ``R^2 = 1 - sum_i (p_i - y_i)^2 / sum_i (y_i - mean(y))^2``;
* the age-bias slope ``b`` of the least-squares line ``p_i - y_i = a + b y_i``: brain-age models
  shrink towards the training mean, so ``b < 0`` (over-predicted young, under-predicted old);
  ``b = -1`` is a model that ignores its features (the mean baseline).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.brainage.protocol import regression_metrics
from harness.runs.catalogue import BRAINAGE_EVALUATION, BRAINAGE_GROUPS

_KEYS = ["regressor", "augmentation", "k"]


def bootstrap_mae_interval(
    y_true: np.ndarray, y_pred: np.ndarray, rng: np.random.Generator, n_boot: int = 2000
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the MAE, resampling subjects with replacement."""
    errors = np.abs(np.asarray(y_pred, float) - np.asarray(y_true, float))
    draws = rng.integers(0, len(errors), size=(n_boot, len(errors)))
    low, high = np.percentile(errors[draws].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


def age_bias(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of ``y_pred - y_true`` regressed on ``y_true`` (NaN if ages are constant)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(y_true) < 2 or np.ptp(y_true) == 0:
        return np.nan, np.nan
    slope, intercept = np.polyfit(y_true, y_pred - y_true, 1)
    return float(slope), float(intercept)


def evaluate_predictions(
    predictions: pd.DataFrame, seed: int = 0, n_boot: int = 2000
) -> pd.DataFrame:
    """One row per (regressor, augmentation, k) of ``predictions`` (columns of predictions.tsv).

    A subject predicted in several splits (never in K-fold or with one test set) counts with the
    mean of its predictions.
    """
    rows = []
    for key, group in predictions.groupby(_KEYS, sort=False):
        per_subject = group.groupby("subject", sort=False)[["age", "predicted"]].mean()
        y, p = per_subject["age"].to_numpy(), per_subject["predicted"].to_numpy()
        low, high = bootstrap_mae_interval(y, p, np.random.default_rng(seed), n_boot)
        slope, intercept = age_bias(y, p)
        metrics = regression_metrics(y, p)
        rows.append(
            dict(zip(_KEYS, key, strict=True))
            | {"n_subjects": len(y), "mae": metrics["mae"], "mae_ci_low": low, "mae_ci_high": high}
            | {"rmse": metrics["rmse"], "r": metrics["r"], "r2": metrics["r2"]}
            | {"bias_slope": slope, "bias_intercept": intercept}
        )
    return pd.DataFrame(rows, columns=list(BRAINAGE_EVALUATION.columns))


def evaluate_by_group(
    predictions: pd.DataFrame, metadata: pd.DataFrame | None, seed: int = 0, n_boot: int = 2000
) -> pd.DataFrame:
    """:func:`evaluate_predictions` per value of each metadata column (site, sex).

    ``metadata`` is indexed by subject id; subjects without metadata are left out.
    """
    rows = []
    for column in [] if metadata is None else metadata.columns:
        groups = predictions["subject"].astype(str).map(metadata[column])
        for value in sorted(groups.dropna().unique()):
            table = evaluate_predictions(predictions[groups == value], seed, n_boot)
            rows.append(table.assign(group_by=column, group=value))
    if not rows:
        return pd.DataFrame(columns=list(BRAINAGE_GROUPS.columns))
    return pd.concat(rows, ignore_index=True)[list(BRAINAGE_GROUPS.columns)]
