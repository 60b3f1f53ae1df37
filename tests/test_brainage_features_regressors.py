"""Features (ICV normalisation) and the estimator contract of the regressors."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from harness.brainage.features import IcvNormalization, build_features, icv_proxy
from harness.brainage.regressors import BrainAgeRegressor, RegressorKind, parse_regressors
from harness.errors import InputError

VOLUMES = np.array([[[1.0, 3.0], [2.0, 2.0]], [[1.5, 2.5], [1.0, 3.0]]])  # M=2, S=2, R=2


def test_icv_sum_normalisation():
    np.testing.assert_array_equal(icv_proxy(VOLUMES), [[4.0, 4.0], [4.0, 4.0]])
    features, applied = build_features(VOLUMES, "auto")
    assert applied is IcvNormalization.SUM
    np.testing.assert_allclose(features[0, 0], [0.25, 0.75])
    np.testing.assert_allclose(features.sum(axis=-1), 1.0)


def test_etiv_normalisation_and_errors():
    etiv = np.array([[2.0, 4.0], [2.0, 4.0]])
    features, applied = build_features(VOLUMES, "auto", etiv)
    assert applied is IcvNormalization.ETIV
    np.testing.assert_allclose(features[:, 1], VOLUMES[:, 1] / 4.0)
    with pytest.raises(InputError, match="needs aseg.stats"):
        build_features(VOLUMES, "etiv", None)
    with pytest.raises(InputError, match="icv normalization must be one of"):
        build_features(VOLUMES, "bogus")
    same, applied = build_features(VOLUMES, "none")
    assert applied is IcvNormalization.NONE and same is not None
    np.testing.assert_array_equal(same, VOLUMES)


@pytest.mark.parametrize("kind", [k.value for k in RegressorKind])
def test_every_regressor_follows_the_estimator_contract(kind):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    y = 40 + 10 * X[:, 0] + rng.standard_normal(30)
    model = BrainAgeRegressor(
        kind=kind, random_state=0, params={"n_estimators": 5} if kind in ("rf", "gb") else None
    )
    with pytest.raises(NotFittedError):
        model.predict(X)
    assert not hasattr(model, "pipeline_")
    model.fit(X, y)
    assert model.kind_ is RegressorKind(kind) and model.n_features_in_ == 4
    assert model.pipeline_.steps[0][0] == "scale"
    prediction = model.predict(X)
    assert prediction.shape == (30,) and np.isfinite(prediction).all()
    np.testing.assert_array_equal(prediction, clone(model).fit(X, y).predict(X))
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])


def test_regressors_fit_signal():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 3))
    y = 50 + 8 * X[:, 1]
    model = BrainAgeRegressor("ridge").fit(X, y)
    assert np.abs(model.predict(X) - y).mean() < 1.0


def test_parse_regressors():
    assert parse_regressors("rf, svr,rf,ridge") == (
        RegressorKind.RF,
        RegressorKind.SVR,
        RegressorKind.RIDGE,
    )
    with pytest.raises(InputError, match=r"regressor must be one of .*'xgb'"):
        parse_regressors("rf,xgb")
    with pytest.raises(InputError, match="at least one"):
        parse_regressors(" , ")
    with pytest.raises(InputError, match="regressor must be one of"):
        BrainAgeRegressor("lasso").fit(np.ones((3, 2)), np.arange(3.0))
