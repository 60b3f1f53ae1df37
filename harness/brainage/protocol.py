"""The brain-age augmentation protocol (anchor paper; docs/design.md, "Brain-age protocol"), plus controls.

For each subject-level split (stratified K-fold on age bins, one stratified train/test split, or
a given held-out test set; a subject's rows, original or augmented, are only ever on one side)
and each regressor (plus the ``mean`` and ``median`` baselines, always):

* ``none``: train on the baseline member's features of the training subjects (k = 0);
* ``ensemble``: train on the baseline rows plus the rows of k perturbed members (same ages),
  for k = 1..N, averaged over up to ``max_combinations`` member combinations;
* ``gaussian``: train on the baseline rows plus k copies with Gaussian noise of the per-feature
  member variance (:func:`harness.brainage.features.member_variance`), as many draws as
  combinations at that k.

With one member (a single table) only ``none`` runs; with members, the arms share the splits,
so each is compared against the same evaluation without augmentation. Every model is scored on
the baseline test features (MAE, RMSE, Pearson r, R^2) and on every perturbed member's test
features where the test subjects have them (robustness: per-subject SD and range of the
predicted age, MAE on perturbed features). Scaling, the Gaussian variance and ``tune``'s inner
cross-validation see only the training subjects of each split.
Shape letters: M members (index 0 = baseline), S subjects, R regions.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, StratifiedShuffleSplit

from harness.brainage.features import member_variance
from harness.brainage.regressors import (
    BASELINE_KINDS,
    TUNING_GRIDS,
    BrainAgeRegressor,
    RegressorKind,
)
from harness.errors import InputError
from harness.runs.catalogue import BRAINAGE_METRICS

#: metrics per split (the columns of the results table; summarised as mean and 95% CI)
METRICS = BRAINAGE_METRICS


class Evaluation(Enum):
    """How subjects are split into training and test sets."""

    KFOLD = "kfold"  # stratified K-fold over all subjects
    SPLIT = "split"  # one stratified train/test split of ``test_fraction``
    TEST = "test"  # a given held-out test set


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
    evaluation : Evaluation
        K-fold, one stratified split, or a given test set (``splits`` of :func:`run_protocol`).
    test_fraction : float
        Share of subjects in the test set of ``Evaluation.SPLIT``.
    tune : bool
        Choose each model's hyper-parameters per split by inner cross-validation
        (``tune_folds`` folds, mean absolute error) over
        :data:`harness.brainage.regressors.TUNING_GRIDS`, on the split's training subjects.
    tune_folds : int
        Folds of the inner cross-validation.
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
    evaluation: Evaluation = Evaluation.KFOLD
    test_fraction: float = 0.2
    tune: bool = False
    tune_folds: int = 3

    @property
    def all_regressors(self) -> tuple[RegressorKind, ...]:
        """The regressors, then the baselines not already among them."""
        return tuple(dict.fromkeys((*self.regressors, *BASELINE_KINDS)))

    def validate(self, n_subjects: int) -> None:
        """Raise :class:`InputError` on settings that cannot work for ``n_subjects``."""
        if not self.regressors:
            raise InputError("regressors must name at least one regressor")
        if self.max_combinations < 1:
            raise InputError(f"max_combinations must be >= 1, got {self.max_combinations!r}")
        if self.tune and self.tune_folds < 2:
            raise InputError(f"tune_folds must be >= 2, got {self.tune_folds!r}")
        if self.evaluation is Evaluation.SPLIT:
            n_test = round(self.test_fraction * n_subjects)
            if not 0 < self.test_fraction < 1 or n_test < 2 or n_subjects - n_test < 2:
                raise InputError(
                    f"split must be a fraction in (0, 1) leaving at least 2 test and 2 training "
                    f"subjects of {n_subjects}, got {self.test_fraction!r}"
                )
            return
        if self.evaluation is Evaluation.TEST:
            return
        if self.n_splits < 2:
            raise InputError(f"splits must be >= 2, got {self.n_splits!r}")
        if n_subjects < 2 * self.n_splits:
            raise InputError(
                f"splits must leave at least 2 test subjects per fold: {n_subjects} subjects "
                f"allow at most {n_subjects // 2} splits, got {self.n_splits}"
            )


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


def strata(ages: np.ndarray, min_count: int, n_bins: int = 5, sites=None) -> np.ndarray:
    """Stratum label per subject: its age bin, crossed with its site when ``sites`` are given.

    Every stratum holds at least ``min_count`` subjects; when crossing with sites would leave a
    smaller one, the age bins alone are used.
    """
    labels = age_bins(ages, min_count, n_bins)
    if sites is None:
        return labels
    _, site_codes = np.unique(np.asarray(sites, dtype=str), return_inverse=True)
    crossed = labels * (site_codes.max() + 1) + site_codes
    _, crossed = np.unique(crossed, return_inverse=True)
    return crossed if np.bincount(crossed).min() >= min_count else labels


def stratified_splits(
    ages: np.ndarray, n_splits: int, seed: int, n_bins: int = 5, sites=None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subject-level K-fold stratified by age bin (and site): list of (train, test) indices."""
    labels = strata(ages, n_splits, n_bins, sites)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in folds.split(np.zeros(len(ages)), labels)]


def holdout_split(
    ages: np.ndarray, test_fraction: float, seed: int, n_bins: int = 5, sites=None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One train/test split of ``round(test_fraction * S)`` subjects, stratified by age bin (and
    site); coarser strata (age bins alone, then none) when the test set is smaller than the
    number of strata."""
    n_test = round(test_fraction * len(ages))
    candidates = (strata(ages, 2, n_bins, sites), age_bins(ages, 2, n_bins))
    labels = np.zeros(len(ages), dtype=int)
    for option in candidates:
        n_strata = len(set(option))
        if n_test >= n_strata and len(ages) - n_test >= n_strata:
            labels = option
            break
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(ages)), labels))
    return [(np.sort(train), np.sort(test))]


def make_splits(ages: np.ndarray, config: ProtocolConfig, sites=None) -> list:
    """The splits of ``config.evaluation`` (K-fold or one split; a test set is given instead)."""
    if config.evaluation is Evaluation.TEST:
        raise InputError("evaluation 'test' needs the held-out test set as splits")
    if config.evaluation is Evaluation.SPLIT:
        return holdout_split(ages, config.test_fraction, config.seed, config.n_age_bins, sites)
    return stratified_splits(ages, config.n_splits, config.seed, config.n_age_bins, sites)


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
    if np.ptp(y_true) > 0 and np.ptp(y_pred) > 0:
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
        Rows with NaN (members without test features) are ignored; with none left, all NaN.
    """
    p = np.asarray(perturbed_predictions, float)
    p = p[np.isfinite(p).all(axis=1)]  # members the test subjects have features of
    if p.shape[0] == 0:
        missing = np.full(len(ages), np.nan)
        return {"pred_sd": missing, "pred_range": missing, "abs_error_perturbed": missing}
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
    """Tables of one protocol run (see the user manual for every column).

    ``tuning`` has the hyper-parameters chosen per split and regressor (empty without ``tune``).
    """

    results: pd.DataFrame
    summary: pd.DataFrame
    predictions: pd.DataFrame
    robustness: pd.DataFrame
    tuning: pd.DataFrame = field(default_factory=pd.DataFrame)


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


def _tasks_of(kind: RegressorKind, tasks: list[_Task]) -> list[_Task]:
    # the baselines ignore features: augmentation repeats ages and cannot change them
    return tasks[:1] if kind in BASELINE_KINDS else tasks


def _check_splits(splits, n_subjects: int) -> None:
    for train, test in splits:
        if len(train) < 2 or len(test) < 1:
            raise InputError(
                f"splits need at least 2 training and 1 test subject, got {len(train)}, {len(test)}"
            )
        if set(train) & set(test):
            raise InputError("splits: a subject is on both sides of a split")
        if max(max(train), max(test)) >= n_subjects or min(min(train), min(test)) < 0:
            raise InputError(f"splits: subject indices must be in 0..{n_subjects - 1}")


def run_protocol(
    features: np.ndarray,
    ages: np.ndarray,
    subjects: tuple[str, ...],
    config: ProtocolConfig,
    progress: bool = True,
    splits: list[tuple[np.ndarray, np.ndarray]] | None = None,
    sites=None,
) -> ProtocolResult:
    """Run every split x regressor x augmentation x k and return the result tables.

    Parameters
    ----------
    features : ndarray, shape (M, S, R)
        Member 0 is the baseline; members 1..M-1 are perturbed (M = 1: no augmentation).
        Perturbed rows of test-only subjects may be NaN (a held-out table without members).
    ages : ndarray, shape (S,)
    subjects : tuple of str, length S
    config : ProtocolConfig
    progress : bool
        Show a tqdm bar over model fits.
    splits : list of (train, test) index arrays, optional
        Given splits (the held-out test set of ``Evaluation.TEST``); default
        :func:`make_splits`.
    sites : array of str, shape (S,), optional
        Site per subject: strata cross age bins with sites.
    """
    from tqdm.auto import tqdm

    features = np.asarray(features, float)
    ages = np.asarray(ages, float)
    if features.ndim != 3 or features.shape[0] < 1 or features.shape[1] != len(ages):
        raise InputError(
            f"features must have shape (members >= 1, subjects = {len(ages)}, regions), "
            f"got {features.shape}"
        )
    if splits is None:
        config.validate(len(ages))
        splits = make_splits(ages, config, sites)
    else:
        _check_splits(splits, len(ages))
    tasks = _tasks(features.shape[0] - 1, config)
    kinds = config.all_regressors
    per_split = sum(len(t.repeats) for kind in kinds for t in _tasks_of(kind, tasks))
    records: dict[str, list] = {"results": [], "predictions": [], "robustness": [], "tuning": []}
    with tqdm(total=len(splits) * per_split, desc="brainage fits", unit="fit",
              disable=not progress) as bar:  # fmt: skip
        for split, (train, test) in enumerate(splits):
            if not np.isfinite(features[:, train]).all():
                raise InputError("features of training subjects must be finite for every member")
            variance = member_variance(features[:, train]) if features.shape[0] > 1 else None
            for kind in kinds:
                params = _params(kind, features[0, train], ages[train], config, split, records)
                for task in _tasks_of(kind, tasks):
                    predicted = _fit_repeats(
                        features, ages, train, test, variance, kind, params, task, config, split
                    )
                    bar.update(len(task.repeats))
                    _record(
                        records, kind, task, split, predicted, ages[test],
                        [subjects[i] for i in test],
                    )  # fmt: skip
    results = pd.DataFrame(records["results"])
    return ProtocolResult(
        results=results,
        summary=summarize(results),
        predictions=pd.DataFrame(records["predictions"]),
        robustness=pd.DataFrame(records["robustness"]),
        tuning=pd.DataFrame(records["tuning"], columns=["regressor", "split", "params",
                                                         "inner_mae"]),
    )  # fmt: skip


def tune_params(
    kind: RegressorKind, X: np.ndarray, y: np.ndarray, config: ProtocolConfig, split: int = 0
) -> tuple[dict, float]:
    """Hyper-parameters of ``kind`` with the lowest inner-CV MAE on ``(X, y)``, and that MAE.

    The grid is :data:`~harness.brainage.regressors.TUNING_GRIDS` without the parameters fixed
    in ``config.regressor_params``; ``X`` holds one row per training subject, so the inner
    ``KFold`` is subject-level and never sees the outer test subjects.
    """
    fixed = dict(config.regressor_params.get(kind.value) or {})
    grid = {k: v for k, v in TUNING_GRIDS.get(kind, {}).items() if k not in fixed}
    if not grid:
        return fixed, float("nan")
    candidates = [
        fixed | dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())
    ]
    folds = min(config.tune_folds, len(y))
    search = GridSearchCV(
        BrainAgeRegressor(kind=kind.value, random_state=config.seed),
        {"params": candidates},
        scoring="neg_mean_absolute_error",
        cv=KFold(folds, shuffle=True, random_state=config.seed + split),
    )
    search.fit(X, y)
    return search.best_params_["params"], float(-search.best_score_)


def _params(kind, X, y, config: ProtocolConfig, split: int, records) -> dict | None:
    if not config.tune or kind in BASELINE_KINDS:
        return config.regressor_params.get(kind.value)
    params, inner_mae = tune_params(kind, X, y, config, split)
    records["tuning"].append(
        {"regressor": kind.value, "split": split, "params": json.dumps(params, sort_keys=True),
         "inner_mae": inner_mae}
    )  # fmt: skip
    return params


def _fit_repeats(
    features, ages, train, test, variance, kind, params, task: _Task, config, split: int
) -> list[np.ndarray]:
    """Fit one model per repeat; return each repeat's predictions, shape (M, n_test).

    Members without features for the test subjects get NaN predictions.
    """
    n_members = features.shape[0]
    present = [m for m in range(n_members) if np.isfinite(features[m, test]).all()]
    test_rows = features[present][:, test].reshape(-1, features.shape[2])
    outputs = []
    for repeat in task.repeats:
        X, y = _training_set(features, ages, train, variance, task, repeat, config.seed, split)
        model = BrainAgeRegressor(kind=kind.value, random_state=config.seed, params=params)
        model.fit(X, y)
        predicted = np.full((n_members, len(test)), np.nan)
        predicted[present] = model.predict(test_rows).reshape(len(present), len(test))
        outputs.append(predicted)
    return outputs


def _training_set(features, ages, train, variance, task: _Task, repeat, seed: int, split: int):
    if task.augmentation == "gaussian":
        rng = np.random.default_rng([seed, split, task.k, repeat])
        return gaussian_training_set(features[0, train], ages[train], variance, task.k, rng)
    return ensemble_training_set(features, ages, train, tuple(repeat))


def _record(records, kind, task: _Task, split, predicted: list[np.ndarray], ages, subjects) -> None:
    """Average metrics, predictions and robustness (models only) over repeats; append the rows."""
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
        if kind in BASELINE_KINDS:
            continue  # constant predictions: no spread to report
        records["robustness"].append(
            {**key, "subject": subject, "age": ages[i], **{n: v[i] for n, v in avg.items()}}
        )
