"""Brain age on a DataFrame: :func:`evaluate_table` in, :class:`BrainAgeResults` out.

The same pipeline as ``harness brainage --table`` without files: declared features, metadata
columns, ICV from a column, K-fold / split / held-out test evaluation with the mean and median
baselines, and final models fitted on every training subject whose :meth:`BrainAgeResults.predict`
matches columns by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.brainage.features import IcvNormalization, build_features
from harness.brainage.io import BrainAgeData, table_data
from harness.brainage.protocol import Evaluation, ProtocolConfig, tune_params
from harness.brainage.regressors import BrainAgeRegressor, RegressorKind, parse_params
from harness.brainage.run import evaluate_data
from harness.brainage.tables import FeatureSpec, TableColumns, index_by_subject
from harness.errors import InputError


@dataclass
class BrainAgeResults:
    """Tables, summary and fitted models of one evaluation.

    Attributes
    ----------
    evaluation : DataFrame
        Pooled test metrics per (regressor, augmentation, k): MAE with its bootstrap interval,
        RMSE, r, R², age-bias slope; the ``mean`` and ``median`` baselines included.
    summary, results, predictions, by_group : DataFrame
        As summary.tsv, results.tsv, predictions.tsv, evaluation_by_group.tsv of a run.
    features : tuple of str
        The feature columns, in model order.
    excluded : dict
        Numeric columns not used as features, with the reason.
    icv : str
        The ICV normalisation applied and its source.
    models : dict
        ``{regressor name: BrainAgeRegressor}`` fitted on every training subject (no
        augmentation), on a DataFrame of ``features``.
    info : dict
        Evaluation mode, subject counts, metadata counts.
    """

    evaluation: pd.DataFrame
    summary: pd.DataFrame
    results: pd.DataFrame
    predictions: pd.DataFrame
    features: tuple[str, ...]
    excluded: dict
    icv: str
    normalization: IcvNormalization
    icv_column: str | None
    models: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    by_group: pd.DataFrame = field(default_factory=pd.DataFrame)

    def predict(self, frame: pd.DataFrame, regressor: str = "ridge") -> np.ndarray:
        """Predicted ages of the rows of ``frame``, matched to the features by column name.

        Raises
        ------
        InputError
            ``frame`` is not a DataFrame, lacks a feature column (or the ICV column the
            features were normalised by), or ``regressor`` was not fitted.
        """
        name = RegressorKind.parse(regressor).value
        if name not in self.models:
            raise InputError(
                f"regressor must be one of the fitted {sorted(self.models)}, got {regressor!r}"
            )
        if not isinstance(frame, pd.DataFrame):
            raise InputError(
                f"predict needs a DataFrame with the feature columns {list(self.features)[:5]}..., "
                f"got {type(frame).__name__}; columns are matched by name"
            )
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise InputError(f"predict: feature column(s) missing: {missing[:8]}")
        volumes = frame[list(self.features)].to_numpy(dtype=float)[None]
        etiv = None
        if self.normalization is IcvNormalization.ETIV:
            if self.icv_column not in frame.columns:
                raise InputError(f"predict: the ICV column {self.icv_column!r} is missing")
            etiv = frame[self.icv_column].to_numpy(dtype=float)[None]
        features, _ = build_features(volumes, self.normalization, etiv)
        X = pd.DataFrame(features[0], columns=list(self.features), index=frame.index)
        return self.models[name].predict(X)


def _data(frame, participants, features, columns, what) -> BrainAgeData:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    indexed = index_by_subject(frame.reset_index(drop=True), columns.subject, what)
    if participants is not None:
        people = index_by_subject(participants.reset_index(drop=True), None, "participants")
        indexed = indexed.join(people[[c for c in people.columns if c not in indexed.columns]])
    return table_data(indexed, features, columns, what)


def evaluate_table(
    frame: pd.DataFrame,
    *,
    participants: pd.DataFrame | None = None,
    test: pd.DataFrame | None = None,
    features=None,
    include_columns=(),
    columns: TableColumns | None = None,
    regressors=("ridge", "svr", "rf", "gb"),
    params: dict | None = None,
    tune: bool = False,
    normalize_icv: IcvNormalization | str = IcvNormalization.NONE,
    n_splits: int = 5,
    split: float | None = None,
    stratify_site: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> BrainAgeResults:
    """Evaluate brain-age regressors on a table of one row per subject.

    Parameters
    ----------
    frame : DataFrame
        Subject id column, age column (or ``participants``), feature columns.
    participants : DataFrame, optional
        Ages (and site/sex) per subject, joined on the subject id.
    test : DataFrame, optional
        Held-out test subjects with the same feature (and age) columns; otherwise K-fold, or one
        stratified split of ``split``.
    features : sequence of str, optional
        Feature columns (names or glob patterns); default the FreeSurfer region names.
    include_columns : sequence of str
        Further columns used as features.
    columns : TableColumns, optional
        Subject, age, site, sex and ICV column names.
    regressors : sequence of str
        Model kinds (the ``mean``/``median`` baselines are always added).
    params : dict, optional
        ``{"svr.C": 10, ...}`` hyper-parameters, validated against each model's parameters.
    tune : bool
        Choose hyper-parameters by nested CV (inner folds on each training set).
    normalize_icv : IcvNormalization or str
        ``none``, ``sum``, ``etiv`` (the ICV column) or ``auto``.
    n_splits, split, stratify_site, seed, progress
        As the CLI's ``--splits``, ``--split``, ``--stratify-site``, ``--seed``.
    """
    columns = columns or TableColumns()
    spec = FeatureSpec(None if features is None else tuple(features), tuple(include_columns))
    data = _data(frame, participants, spec, columns, "frame")
    test_data = None
    if test is not None:
        test_data = _data(test, participants, FeatureSpec(features=data.regions), columns, "test")
    kinds = tuple(RegressorKind.parse(r) for r in regressors)
    items = [f"{k}={v}" for k, v in (params or {}).items()]
    config = ProtocolConfig(
        regressors=kinds,
        n_splits=n_splits,
        seed=seed,
        regressor_params=parse_params(items, [k.value for k in kinds]),
        evaluation=Evaluation.TEST if test is not None else (
            Evaluation.SPLIT if split is not None else Evaluation.KFOLD),
        test_fraction=0.2 if split is None else split,
        tune=tune,
    )  # fmt: skip
    done = evaluate_data(data, config, normalize_icv, test_data, stratify_site, progress)
    train_features, _ = build_features(data.volumes, done.normalization, data.etiv)
    X = pd.DataFrame(train_features[0], columns=list(data.regions))
    models = {}
    for kind in config.all_regressors:
        kind_params = config.regressor_params.get(kind.value)
        if tune:
            kind_params, _ = tune_params(kind, X.to_numpy(), data.ages, config)
        model = BrainAgeRegressor(kind=kind.value, random_state=seed, params=kind_params)
        models[kind.value] = model.fit(X, data.ages)
    icv_column = data.icv_source.removeprefix("column ") if data.icv_source else None
    return BrainAgeResults(
        evaluation=done.evaluation,
        summary=done.summary,
        results=done.results,
        predictions=done.predictions,
        features=data.regions,
        excluded=dict(data.excluded),
        icv=done.icv,
        normalization=done.normalization,
        icv_column=icv_column,
        models=models,
        info=done.info,
        by_group=done.by_group,
    )
