"""The brain-age augmentation protocol (anchor paper; docs/design.md, "Brain-age protocol"), plus controls.

For each subject-level split (stratified K-fold on age bins; a subject's rows, original or
augmented, are only ever on one side) and each regressor:

* ``none``: train on the baseline member's features of the training subjects (k = 0);
* ``ensemble``: train on the baseline rows plus the rows of k perturbed members (same ages),
  for k = 1..N, averaged over up to ``max_combinations`` member combinations;
* ``gaussian``: train on the baseline rows plus k copies with Gaussian noise of the per-feature
  member variance (:func:`harness.brainage.features.member_variance`), as many draws as
  combinations at that k.

Every model is scored on the baseline test features (MAE, RMSE, Pearson r, R^2) and on every
perturbed member's test features (robustness: per-subject SD and range of the predicted age,
MAE on perturbed features). Shape letters: M members (index 0 = baseline), S subjects, R regions.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import StratifiedKFold

from harness.brainage.features import member_variance
from harness.brainage.regressors import BrainAgeRegressor, RegressorKind
from harness.errors import InputError
from harness.runs.catalogue import BRAINAGE_METRICS

#: metrics per split (the columns of the results table; summarised as mean and 95% CI)
METRICS = BRAINAGE_METRICS


@dataclass(frozen=True)
class ProtocolConfig:
    """Settings of one protocol run.

    Parameters
    ----------
    regressors : tuple of RegressorKind
        Regressors to evaluate.
    n_splits : int
        Folds of the subject-level stratified K-fold (>= 2).
    max_combinations : int
        Member combinations (and Gaussian draws) evaluated per ensemble size k.
    seed : int
        Seed of the splits, combinations, noise and tree ensembles.
    n_age_bins : int
        Requested number of age-quantile bins for stratification (reduced if bins get too small).
    gaussian_control : bool
        Also run the Gaussian-noise control.
    regressor_params : dict
        ``{kind value: {param: value}}`` passed to the scikit-learn models.
    """

    regressors: tuple[RegressorKind, ...] = (
        RegressorKind.RF,
        RegressorKind.SVR,
        RegressorKind.GB,
        RegressorKind.RIDGE,
    )
    n_splits: int = 5
    max_combinations: int = 10
    seed: int = 0
    n_age_bins: int = 5
    gaussian_control: bool = True
    regressor_params: dict = field(default_factory=dict)

    def validate(self, n_subjects: int) -> None:
        """Raise :class:`InputError` on settings that cannot work for ``n_subjects``."""
        if self.n_splits < 2:
            raise InputError(f"splits must be >= 2, got {self.n_splits!r}")
        if n_subjects < 2 * self.n_splits:
            raise InputError(
                f"splits must leave at least 2 test subjects per fold: {n_subjects} subjects "
                f"allow at most {n_subjects // 2} splits, got {self.n_splits}"
            )
        if self.max_combinations < 1:
            raise InputError(f"max_combinations must be >= 1, got {self.max_combinations!r}")
        if not self.regressors:
            raise InputError("regressors must name at least one regressor")


# --- splits and training sets (pure) ------------------------------------------------------------


def age_bins(ages: np.ndarray, n_splits: int, n_bins: int = 5) -> np.ndarray:
    """Quantile age-bin label per subject, with every bin holding at least ``n_splits`` subjects."""
    ages = np.asarray(ages, dtype=float)
    for bins in range(min(n_bins, len(ages) // n_splits), 0, -1):
        edges = np.quantile(ages, np.linspace(0, 1, bins + 1)[1:-1])
        labels = np.searchsorted(edges, ages, side="right")
        if np.bincount(labels).min() >= n_splits:
            return labels
    return np.zeros(len(ages), dtype=int)


def stratified_splits(
    ages: np.ndarray, n_splits: int, seed: int, n_bins: int = 5
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subject-level K-fold stratified by age bin: list of (train indices, test indices)."""
    labels = age_bins(ages, n_splits, n_bins)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in folds.split(np.zeros(len(ages)), labels)]


def member_combinations(
    n_members: int, k: int, max_combinations: int, rng: np.random.Generator
) -> list[tuple[int, ...]]:
    """Combinations of ``k`` of the perturbed members 1..n_members.

    All of them when there are at most ``max_combinations``, else that many distinct ones drawn
    uniformly with ``rng``. Returned sorted, so the result does not depend on draw order.
    """
    if not 1 <= k <= n_members:
        raise InputError(f"ensemble size k must be in 1..{n_members}, got {k!r}")
    pool = range(1, n_members + 1)
    if math.comb(n_members, k) <= max_combinations:
        return list(itertools.combinations(pool, k))
    chosen: set[tuple[int, ...]] = set()
    while len(chosen) < max_combinations:
        chosen.add(tuple(sorted(int(i) for i in rng.choice(pool, size=k, replace=False))))
    return sorted(chosen)


def ensemble_training_set(
    features: np.ndarray, ages: np.ndarray, train: np.ndarray, members: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline rows of the training subjects plus the same subjects' rows of ``members``.

    Returns X of shape (n_train * (1 + k), R) and y repeating the training ages.
    """
    rows = (0, *members)
    X = np.concatenate([features[m, train] for m in rows])
    return X, np.tile(ages[train], len(rows))


def gaussian_training_set(
    baseline: np.ndarray, ages: np.ndarray, variance: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline training rows plus ``k`` copies with ``N(0, variance[r])`` noise per feature."""
    noise = rng.standard_normal((k, *baseline.shape)) * np.sqrt(variance)
    X = np.concatenate([baseline, *(baseline + noise)])
    return X, np.tile(ages, k + 1)


# --- metrics (pure) -----------------------------------------------------------------------------


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, Pearson r and R^2 (r is NaN when a side is constant)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    err = y_pred - y_true
    ss_tot = np.sum((y_true - y_true.mean()) ** 2)
    r = np.nan
    if y_true.std() > 0 and y_pred.std() > 0:
        r = float(np.corrcoef(y_true, y_pred)[0, 1])
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r": r,
        "r2": float(1 - np.sum(err**2) / ss_tot) if ss_tot > 0 else np.nan,
    }


def prediction_spread(perturbed_predictions: np.ndarray, ages: np.ndarray) -> dict[str, np.ndarray]:
    """Per-subject robustness from predictions on the perturbed members' features.

    Parameters
    ----------
    perturbed_predictions : ndarray, shape (N, n_test)
        Predicted age of each test subject from each perturbed member's features.
    ages : ndarray, shape (n_test,)

    Returns
    -------
    dict
        ``pred_sd`` (ddof=1; NaN with one member), ``pred_range`` (max - min) and
        ``abs_error_perturbed`` (mean over members of |prediction - age|), each (n_test,).
    """
    p = np.asarray(perturbed_predictions, float)
    sd = p.std(axis=0, ddof=1) if p.shape[0] > 1 else np.full(p.shape[1], np.nan)
    return {
        "pred_sd": sd,
        "pred_range": p.max(axis=0) - p.min(axis=0),
        "abs_error_perturbed": np.abs(p - ages).mean(axis=0),
    }


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean over splits (NaNs dropped)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def summarize(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean and CI over splits of every metric, per (regressor, augmentation, k)."""
    rows = []
    for (reg, aug, k), group in results.groupby(["regressor", "augmentation", "k"], sort=False):
        row = {"regressor": reg, "augmentation": aug, "k": k, "n_splits": len(group)}
        for metric in METRICS:
            mean, low, high = confidence_interval(group[metric].to_numpy(), level)
            row.update({f"{metric}_mean": mean, f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


# --- the sweep (wiring) -------------------------------------------------------------------------


@dataclass
class ProtocolResult:
    """Tables of one protocol run (see the user manual for every column)."""

    results: pd.DataFrame
    summary: pd.DataFrame
    predictions: pd.DataFrame
    robustness: pd.DataFrame


@dataclass(frozen=True)
class _Task:
    augmentation: str
    k: int
    repeats: list  # member combinations, or Gaussian draw numbers


def _tasks(n_perturbed: int, config: ProtocolConfig) -> list[_Task]:
    tasks = [_Task("none", 0, [()])]
    for k in range(1, n_perturbed + 1):
        rng = np.random.default_rng([config.seed, k])
        combos = member_combinations(n_perturbed, k, config.max_combinations, rng)
        tasks.append(_Task("ensemble", k, combos))
        if config.gaussian_control:
            tasks.append(_Task("gaussian", k, list(range(len(combos)))))
    return tasks


def run_protocol(
    features: np.ndarray,
    ages: np.ndarray,
    subjects: tuple[str, ...],
    config: ProtocolConfig,
    progress: bool = True,
) -> ProtocolResult:
    """Run every split x regressor x augmentation x k and return the result tables.

    Parameters
    ----------
    features : ndarray, shape (M, S, R)
        Member 0 is the baseline; members 1..M-1 are perturbed.
    ages : ndarray, shape (S,)
    subjects : tuple of str, length S
    config : ProtocolConfig
    progress : bool
        Show a tqdm bar over model fits.
    """
    from tqdm.auto import tqdm

    features = np.asarray(features, float)
    ages = np.asarray(ages, float)
    if features.ndim != 3 or features.shape[0] < 2 or features.shape[1] != len(ages):
        raise InputError(
            f"features must have shape (members >= 2, subjects = {len(ages)}, regions), "
            f"got {features.shape}"
        )
    config.validate(len(ages))
    splits = stratified_splits(ages, config.n_splits, config.seed, config.n_age_bins)
    tasks = _tasks(features.shape[0] - 1, config)
    total = len(splits) * len(config.regressors) * sum(len(t.repeats) for t in tasks)
    records: dict[str, list] = {"results": [], "predictions": [], "robustness": []}
    with tqdm(total=total, desc="brainage fits", unit="fit", disable=not progress) as bar:
        for split, (train, test) in enumerate(splits):
            variance = member_variance(features[:, train])
            for kind in config.regressors:
                for task in tasks:
                    predicted = _fit_repeats(
                        features, ages, train, test, variance, kind, task, config, split
                    )
                    bar.update(len(task.repeats))
                    _record(
                        records,
                        kind,
                        task,
                        split,
                        predicted,
                        ages[test],
                        [subjects[i] for i in test],
                    )
    results = pd.DataFrame(records["results"])
    return ProtocolResult(
        results=results,
        summary=summarize(results),
        predictions=pd.DataFrame(records["predictions"]),
        robustness=pd.DataFrame(records["robustness"]),
    )


def _fit_repeats(
    features, ages, train, test, variance, kind, task: _Task, config: ProtocolConfig, split: int
) -> list[np.ndarray]:
    """Fit one model per repeat; return each repeat's predictions, shape (M, n_test)."""
    n_members, _, n_regions = features.shape
    test_rows = features[:, test].reshape(-1, n_regions)
    outputs = []
    for repeat in task.repeats:
        X, y = _training_set(features, ages, train, variance, task, repeat, config.seed, split)
        model = _regressor(kind, config)
        model.fit(X, y)
        outputs.append(model.predict(test_rows).reshape(n_members, len(test)))
    return outputs


def _training_set(features, ages, train, variance, task: _Task, repeat, seed: int, split: int):
    if task.augmentation == "gaussian":
        rng = np.random.default_rng([seed, split, task.k, repeat])
        return gaussian_training_set(features[0, train], ages[train], variance, task.k, rng)
    return ensemble_training_set(features, ages, train, tuple(repeat))


def _regressor(kind: RegressorKind, config: ProtocolConfig) -> BrainAgeRegressor:
    params = config.regressor_params.get(kind.value)
    return BrainAgeRegressor(kind=kind.value, random_state=config.seed, params=params)


def _record(records, kind, task: _Task, split, predicted: list[np.ndarray], ages, subjects) -> None:
    """Average metrics, predictions and robustness over repeats and append the rows."""
    key = {"regressor": kind.value, "augmentation": task.augmentation, "k": task.k, "split": split}
    per_repeat = []
    spreads = []
    for pred in predicted:
        spread = prediction_spread(pred[1:], ages)
        spreads.append(spread)
        per_repeat.append(
            {
                **regression_metrics(ages, pred[0]),
                "mae_perturbed": float(spread["abs_error_perturbed"].mean()),
                "pred_sd": float(np.mean(spread["pred_sd"])),
                "pred_range": float(np.mean(spread["pred_range"])),
            }
        )
    means = pd.DataFrame(per_repeat).mean(axis=0).to_dict()
    records["results"].append({**key, "n_repeats": len(predicted), **means})
    baseline_pred = np.mean([p[0] for p in predicted], axis=0)
    avg = {name: np.mean([s[name] for s in spreads], axis=0) for name in spreads[0]}
    for i, subject in enumerate(subjects):
        records["predictions"].append(
            {**key, "subject": subject, "age": ages[i], "predicted": baseline_pred[i]}
        )
        records["robustness"].append(
            {**key, "subject": subject, "age": ages[i], **{n: v[i] for n, v in avg.items()}}
        )
