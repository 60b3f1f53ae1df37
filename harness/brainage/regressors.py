"""Brain-age regressors with the scikit-learn estimator contract.

:class:`BrainAgeRegressor` stores its parameters in ``__init__``, validates inputs and sets
trailing-underscore attributes in :meth:`~BrainAgeRegressor.fit`, and checks it is fitted in
:meth:`~BrainAgeRegressor.predict`. Every kind is a ``Pipeline(StandardScaler, model)``.
Model defaults follow scikit-learn's, as in the anchor paper's code, except that tree ensembles
take ``random_state`` so runs are reproducible by seed. ``mean`` and ``median`` are the
predict-the-training-mean/median baselines every evaluation reports beside the models.
Hyper-parameters are set with :func:`parse_params` (``svr.C=10``, validated against the model's
own parameters) or chosen by inner cross-validation over :data:`TUNING_GRIDS`.
"""

from __future__ import annotations

import ast
from enum import Enum

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.dummy import DummyRegressor
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
    MEAN = "mean"  # baseline: the training mean age
    MEDIAN = "median"  # baseline: the training median age

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


#: the baselines reported beside every set of models
BASELINE_KINDS = (RegressorKind.MEAN, RegressorKind.MEDIAN)


def _model(kind: RegressorKind, random_state: int | None, params: dict):
    if kind in BASELINE_KINDS:
        return DummyRegressor(strategy=kind.value, **params)
    if kind is RegressorKind.RF:
        return RandomForestRegressor(random_state=random_state, **params)
    if kind is RegressorKind.GB:
        return GradientBoostingRegressor(random_state=random_state, **params)
    if kind is RegressorKind.SVR:
        return SVR(**params)
    if kind is RegressorKind.RIDGE:
        return Ridge(**params)
    return KNeighborsRegressor(**params)


#: parameters harness sets itself (``random_state`` from the seed; the baselines' strategy)
_RESERVED = {"random_state": "set by the seed", "strategy": "fixed by the baseline kind"}

#: small grids searched by ``--tune`` (inner cross-validation on each training set)
TUNING_GRIDS: dict[RegressorKind, dict[str, list]] = {
    RegressorKind.RIDGE: {"alpha": [0.1, 1.0, 10.0, 100.0]},
    RegressorKind.SVR: {"C": [1.0, 10.0, 100.0], "epsilon": [0.1, 1.0]},
    RegressorKind.RF: {"max_features": [1.0, "sqrt"], "min_samples_leaf": [1, 5]},
    RegressorKind.GB: {"learning_rate": [0.05, 0.1], "max_depth": [2, 3]},
    RegressorKind.KNN: {"n_neighbors": [5, 10, 20]},
}


def _literal(text: str):
    """``10`` -> 10, ``0.5`` -> 0.5, ``true`` -> True, ``none`` -> None, anything else a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[lowered]
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()
    return value if isinstance(value, (int, float)) else text.strip()


def check_params(kind: RegressorKind, params: dict) -> None:
    """Raise :class:`InputError` unless ``params`` are valid parameters of ``kind``'s model."""
    model = _model(kind, None, {})
    known = sorted(p for p in model.get_params() if p not in _RESERVED)
    for name in params:
        if name in _RESERVED:
            raise InputError(f"param {kind.value}.{name}: {name} is {_RESERVED[name]}")
        if name not in known:
            raise InputError(
                f"param {kind.value}.{name}: {type(model).__name__} has no parameter {name!r}; "
                f"valid: {known}"
            )
    model.set_params(**params)
    try:
        model._validate_params()  # scikit-learn's own constraints on the values
    except (ValueError, TypeError) as exc:
        raise InputError(f"param {kind.value}: {exc}") from None


def parse_params(items, regressors) -> dict[str, dict]:
    """Parse ``["svr.C=10", "ridge.alpha=0.5"]`` into ``{"svr": {"C": 10}, "ridge": {...}}``.

    Each kind must be among ``regressors`` and each name a parameter of its scikit-learn model
    (checked with the model's own validation), else :class:`InputError` names the item.
    """
    out: dict[str, dict] = {}
    chosen = {RegressorKind.parse(r) for r in regressors}
    for item in items:
        head, sep, value = str(item).partition("=")
        kind_name, dot, name = head.partition(".")
        if not (sep and dot and kind_name.strip() and name.strip()):
            raise InputError(f"param must look like KIND.NAME=VALUE (svr.C=10), got {item!r}")
        kind = RegressorKind.parse(kind_name)
        if kind not in chosen:
            raise InputError(
                f"param {item!r}: {kind.value} is not among the regressors "
                f"{sorted(k.value for k in chosen)}"
            )
        out.setdefault(kind.value, {})[name.strip()] = _literal(value)
    for kind_name, params in out.items():
        check_params(RegressorKind(kind_name), params)
    return out


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
        """Validate ``X`` (n_samples, n_features) and ``y`` (n_samples,) and fit the pipeline.

        Fitted on a DataFrame, the model records its column names (``feature_names_in_``) and
        :meth:`predict` then accepts only a DataFrame with those columns.
        """
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
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            X = self._columns_by_name(X, list(names))
        X = validate_data(self, X, reset=False)
        return self.pipeline_.predict(X)

    @staticmethod
    def _columns_by_name(X, names: list[str]) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise InputError(
                f"predict needs a DataFrame with the {len(names)} feature columns the model was "
                f"fitted on ({names[:5]}...), got {type(X).__name__}; columns are matched by name"
            )
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise InputError(
                f"predict: {len(missing)} feature column(s) the model was fitted on are missing: "
                f"{missing[:8]}"
            )
        return X[names]
