"""Brain-age regressors with the scikit-learn estimator contract.

:class:`BrainAgeRegressor` stores its parameters in ``__init__``, validates inputs and sets
trailing-underscore attributes in :meth:`~BrainAgeRegressor.fit`, and checks it is fitted in
:meth:`~BrainAgeRegressor.predict`. Every kind is a ``Pipeline(StandardScaler, model)``.
Model defaults follow scikit-learn's, as in the anchor paper's code, except that tree ensembles
take ``random_state`` so runs are reproducible by seed.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.utils.validation import check_is_fitted, validate_data

from harness.enums import parse_enum
from harness.errors import InputError


class RegressorKind(Enum):
    """Registered regressor kinds (CLI names)."""

    RF = "rf"
    SVR = "svr"
    GB = "gb"
    RIDGE = "ridge"
    KNN = "knn"

    @classmethod
    def parse(cls, value: str | RegressorKind) -> RegressorKind:
        """Turn a name into the enum, or raise :class:`InputError` naming the choices."""
        return parse_enum(cls, value, "regressor")


def parse_regressors(text: str) -> tuple[RegressorKind, ...]:
    """Parse a comma-separated list like ``"rf,svr,gb,ridge"`` (duplicates dropped, order kept)."""
    names = [part for part in (p.strip() for p in str(text).split(",")) if part]
    if not names:
        raise InputError(f"regressors must name at least one regressor, got {text!r}")
    return tuple(dict.fromkeys(RegressorKind.parse(n) for n in names))


def _model(kind: RegressorKind, random_state: int | None, params: dict):
    if kind is RegressorKind.RF:
        return RandomForestRegressor(random_state=random_state, **params)
    if kind is RegressorKind.GB:
        return GradientBoostingRegressor(random_state=random_state, **params)
    if kind is RegressorKind.SVR:
        return SVR(**params)
    if kind is RegressorKind.RIDGE:
        return Ridge(**params)
    return KNeighborsRegressor(**params)


class BrainAgeRegressor(RegressorMixin, BaseEstimator):
    """Standardise features, then regress age.

    Parameters
    ----------
    kind : {"rf", "svr", "gb", "ridge", "knn"}
        Model family.
    random_state : int, optional
        Seed of the tree ensembles (ignored by the others).
    params : dict, optional
        Extra keyword arguments of the scikit-learn model (e.g. ``{"n_estimators": 10}``).

    Attributes
    ----------
    kind_ : RegressorKind
        Parsed kind.
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted ``StandardScaler`` + model pipeline.
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    def __init__(self, kind: str = "rf", random_state: int | None = 0, params: dict | None = None):
        self.kind = kind
        self.random_state = random_state
        self.params = params

    def fit(self, X, y):
        """Validate ``X`` (n_samples, n_features) and ``y`` (n_samples,) and fit the pipeline."""
        X, y = validate_data(self, X, y, y_numeric=True)
        if X.shape[0] < 2:
            raise InputError(f"fit needs at least 2 samples, got {X.shape[0]}")
        self.kind_ = RegressorKind.parse(self.kind)
        model = _model(self.kind_, self.random_state, dict(self.params or {}))
        if self.kind_ is RegressorKind.KNN:
            model.set_params(n_neighbors=min(model.n_neighbors, X.shape[0]))
        self.pipeline_ = Pipeline([("scale", StandardScaler()), ("model", model)])
        self.pipeline_.fit(X, y)
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted ages, shape (n_samples,)."""
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, reset=False)
        return self.pipeline_.predict(X)
