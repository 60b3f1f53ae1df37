"""Protocol: subject-level splits, augmented training sets, metrics, reproducibility, end to end."""

import math

import numpy as np
import pandas as pd
import pytest

from harness.brainage.features import member_variance
from harness.brainage.protocol import (
    ProtocolConfig,
    age_bins,
    confidence_interval,
    ensemble_training_set,
    gaussian_training_set,
    member_combinations,
    regression_metrics,
    run_protocol,
    stratified_splits,
)
from harness.brainage.regressors import RegressorKind
from harness.errors import InputError
from helpers.brainage import synthetic_data

FAST = ProtocolConfig(
    regressors=(RegressorKind.RIDGE, RegressorKind.RF),
    n_splits=3,
    max_combinations=2,
    regressor_params={"rf": {"n_estimators": 4}},
)


@pytest.fixture(scope="module")
def data():
    return synthetic_data(n_subjects=24, n_regions=5, n_members=3, member_noise=0.03, seed=1)


@pytest.fixture(scope="module")
def result(data):
    return run_protocol(data.volumes, data.ages, data.subjects, FAST, progress=False)


def test_splits_never_share_a_subject_and_cover_all():
    ages = np.random.default_rng(0).uniform(20, 80, 37)
    splits = stratified_splits(ages, n_splits=5, seed=3)
    tests = np.concatenate([te for _, te in splits])
    assert sorted(tests) == list(range(37))
    for train, test in splits:
        assert not set(train) & set(test)
        assert len(train) + len(test) == 37


def test_splits_are_stratified_by_age_bin():
    ages = np.linspace(20, 80, 50)
    bins = age_bins(ages, n_splits=5)
    assert np.bincount(bins).tolist() == [10] * 5
    for _, test in stratified_splits(ages, 5, seed=0):
        assert np.bincount(bins[test], minlength=5).tolist() == [2] * 5


def test_augmented_training_set_has_n_train_times_one_plus_k_rows(data):
    train = np.arange(0, 24, 2)
    for members in [(1,), (1, 3), (1, 2, 3)]:
        X, y = ensemble_training_set(data.volumes, data.ages, train, members)
        k = len(members)
        assert X.shape == (len(train) * (1 + k), 5)
        np.testing.assert_array_equal(y, np.tile(data.ages[train], 1 + k))
        np.testing.assert_array_equal(X[: len(train)], data.volumes[0, train])
        np.testing.assert_array_equal(X[-len(train) :], data.volumes[members[-1], train])


def test_gaussian_rows_and_matched_variance():
    rng = np.random.default_rng(0)
    baseline = np.zeros((4000, 3))
    variance = np.array([1.0, 4.0, 0.25])
    X, y = gaussian_training_set(baseline, np.arange(4000.0), variance, k=2, rng=rng)
    assert X.shape == (12000, 3) and len(y) == 12000
    np.testing.assert_array_equal(X[:4000], 0.0)
    np.testing.assert_allclose(X[4000:].var(axis=0), variance, rtol=0.06)


def test_member_variance_hand_value():
    features = np.array([[[1.0, 10.0]], [[3.0, 10.0]]])  # M=2, S=1, R=2
    np.testing.assert_allclose(member_variance(features), [2.0, 0.0])


def test_member_combinations_all_or_bounded_and_seeded():
    assert member_combinations(4, 2, 10, np.random.default_rng(0)) == list(
        __import__("itertools").combinations(range(1, 5), 2)
    )
    drawn = member_combinations(15, 7, 10, np.random.default_rng(5))
    assert len(drawn) == 10 == len(set(drawn)) < math.comb(15, 7)
    assert all(len(c) == 7 and set(c) <= set(range(1, 16)) for c in drawn)
    assert drawn == member_combinations(15, 7, 10, np.random.default_rng(5))
    with pytest.raises(InputError, match="ensemble size k"):
        member_combinations(3, 4, 10, np.random.default_rng(0))


def test_regression_metrics_hand_values():
    m = regression_metrics(np.array([10.0, 20.0, 30.0]), np.array([12.0, 18.0, 33.0]))
    assert m["mae"] == pytest.approx(7 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(17 / 3))
    assert m["r2"] == pytest.approx(1 - 17 / 200)
    assert m["r"] == pytest.approx(np.corrcoef([10, 20, 30], [12, 18, 33])[0, 1])
    assert math.isnan(regression_metrics(np.array([1.0, 2.0]), np.array([5.0, 5.0]))["r"])


def test_confidence_interval_hand_value():
    mean, low, high = confidence_interval(np.array([1.0, 2.0, 3.0]))
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))


def test_no_subject_leaks_in_a_run(result, data):
    per_model = result.predictions.groupby(["regressor", "augmentation", "k"])
    for _, rows in per_model:
        assert sorted(rows["subject"]) == sorted(data.subjects)  # each subject tested exactly once
    splits = stratified_splits(data.ages, FAST.n_splits, FAST.seed)
    for split, (train, _) in enumerate(splits):
        tested = set(result.predictions.loc[result.predictions["split"] == split, "subject"])
        assert not tested & {data.subjects[i] for i in train}


def test_run_tables_have_expected_rows(result):
    # 2 regressors x 3 splits x (none + ensemble k=1..3 + gaussian k=1..3), plus the mean and
    # median baselines (none only) on the same splits
    assert len(result.results) == 2 * 3 * 7 + 2 * 3
    assert set(result.results.query("regressor in ['mean', 'median']")["augmentation"]) == {"none"}
    combos = result.results.query("augmentation == 'ensemble'").groupby("k")["n_repeats"].first()
    assert combos.to_dict() == {1: 2, 2: 2, 3: 1}
    assert len(result.summary) == 2 * 7 + 2
    assert set(result.summary["n_splits"]) == {3}
    assert len(result.robustness) == 2 * 7 * 24
    assert len(result.predictions) == 2 * 7 * 24 + 2 * 24


def test_member_noise_shows_as_prediction_spread(result, data):
    rob = result.robustness
    assert (rob.loc[rob["regressor"] == "ridge", "pred_sd"] > 0).all()  # smooth model: always moves
    assert rob.loc[rob["regressor"] == "rf", "pred_sd"].mean() > 0  # piecewise constant: on average
    assert (result.robustness["pred_range"] >= result.robustness["pred_sd"]).all()
    identical = np.repeat(data.volumes[:1], 4, axis=0)
    quiet = run_protocol(identical, data.ages, data.subjects, FAST, progress=False)
    ens = quiet.robustness[quiet.robustness["augmentation"] != "gaussian"]
    np.testing.assert_allclose(ens["pred_sd"], 0.0, atol=1e-9)


def test_results_reproducible_by_seed(result, data):
    again = run_protocol(data.volumes, data.ages, data.subjects, FAST, progress=False)
    pd.testing.assert_frame_equal(result.results, again.results)
    pd.testing.assert_frame_equal(result.predictions, again.predictions)
    other = ProtocolConfig(**{**FAST.__dict__, "seed": 1})
    different = run_protocol(data.volumes, data.ages, data.subjects, other, progress=False)
    assert not np.allclose(result.results["mae"], different.results["mae"])


def test_config_errors(data):
    bad = ProtocolConfig(**{**FAST.__dict__, "n_splits": 13})
    with pytest.raises(InputError, match="splits must leave at least 2 test subjects"):
        run_protocol(data.volumes, data.ages, data.subjects, bad, progress=False)
    with pytest.raises(InputError, match="features must have shape"):
        run_protocol(data.volumes[:, :-1], data.ages, data.subjects, FAST, progress=False)
