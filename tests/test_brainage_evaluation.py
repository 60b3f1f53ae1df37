"""Evaluation on one table: held-out test, split, baselines, bootstrap MAE, age bias, params,
tuning, no leakage, and the DataFrame API."""

import json

import numpy as np
import pandas as pd
import pytest

from harness.brainage import evaluate_table
from harness.brainage.evaluation import (
    age_bias,
    bootstrap_mae_interval,
    evaluate_by_group,
    evaluate_predictions,
)
from harness.brainage.example import freesurfer_example_table
from harness.brainage.protocol import Evaluation, ProtocolConfig, holdout_split, run_protocol
from harness.brainage.regressors import BrainAgeRegressor, RegressorKind, parse_params
from harness.brainage.tables import TableColumns
from harness.errors import InputError
from helpers.brainage import synthetic_data

RIDGE = (RegressorKind.RIDGE,)


def test_bootstrap_interval_and_age_bias_hand_values():
    y = np.array([20.0, 30.0, 40.0, 50.0, 60.0])
    p = y + 10.0 - 0.5 * (y - 20.0)  # error = 10 - 0.5 (y - 20): slope -0.5, intercept 20
    slope, intercept = age_bias(y, p)
    assert (slope, intercept) == pytest.approx((-0.5, 20.0))
    mean_slope, _ = age_bias(y, np.full(5, y.mean()))
    assert mean_slope == pytest.approx(-1.0)  # predicting the mean: slope -1
    low, high = bootstrap_mae_interval(y, p, np.random.default_rng(3), n_boot=400)
    errors = np.abs(p - y)
    draws = np.random.default_rng(3).integers(0, 5, size=(400, 5))
    assert (low, high) == pytest.approx(tuple(np.percentile(errors[draws].mean(1), [2.5, 97.5])))
    assert low <= errors.mean() <= high


def test_evaluate_predictions_pools_subjects():
    frame = pd.DataFrame({
        "regressor": "ridge", "augmentation": "none", "k": 0, "split": [0, 0, 1, 1],
        "subject": ["a", "b", "c", "d"], "age": [20.0, 40.0, 60.0, 80.0],
        "predicted": [25.0, 38.0, 61.0, 70.0],
    })  # fmt: skip
    row = evaluate_predictions(frame, n_boot=200).iloc[0]
    assert row["n_subjects"] == 4 and row["mae"] == pytest.approx((5 + 2 + 1 + 10) / 4)
    assert row["r2"] == pytest.approx(1 - (25 + 4 + 1 + 100) / 2000)


def test_evaluation_by_group_splits_subjects_by_metadata():
    frame = pd.DataFrame({
        "regressor": "ridge", "augmentation": "none", "k": 0, "split": 0,
        "subject": ["a", "b", "c", "d"], "age": [20.0, 40.0, 60.0, 80.0],
        "predicted": [25.0, 38.0, 61.0, 70.0],
    })  # fmt: skip
    meta = pd.DataFrame({"site": ["x", "x", "y", "y"]}, index=["a", "b", "c", "d"])
    table = evaluate_by_group(frame, meta, n_boot=100).set_index("group")
    assert table.loc["x", "mae"] == pytest.approx(3.5) and table.loc["y", "mae"] == 5.5
    assert set(table["n_subjects"]) == {2} and set(table["group_by"]) == {"site"}
    assert evaluate_by_group(frame, None).empty


@pytest.fixture(scope="module")
def one_table():
    return synthetic_data(n_subjects=40, n_regions=6, n_members=0, seed=5)


def test_a_single_table_runs_with_baselines(one_table):
    config = ProtocolConfig(regressors=RIDGE, n_splits=4)
    result = run_protocol(one_table.volumes, one_table.ages, one_table.subjects, config, False)
    assert set(result.results["regressor"]) == {"ridge", "mean", "median"}
    assert set(result.results["augmentation"]) == {"none"} and len(result.results) == 3 * 4
    table = evaluate_predictions(result.predictions).set_index("regressor")
    assert table.loc["ridge", "mae"] < table.loc["mean", "mae"]  # the model beats the baseline
    assert table.loc["mean", "bias_slope"] == pytest.approx(-1.0, abs=0.15)
    assert result.robustness.empty or result.robustness["pred_sd"].isna().all()


def test_members_compare_against_the_same_splits():
    data = synthetic_data(n_subjects=24, n_regions=4, n_members=2, seed=2)
    config = ProtocolConfig(regressors=RIDGE, n_splits=3, gaussian_control=False)
    with_members = run_protocol(data.volumes, data.ages, data.subjects, config, False)
    alone = run_protocol(data.volumes[:1], data.ages, data.subjects, config, False)
    none = with_members.predictions.query("augmentation == 'none'").reset_index(drop=True)
    pd.testing.assert_frame_equal(none, alone.predictions)  # the k = 0 arm is the one-table run


def test_holdout_split_is_stratified_and_disjoint():
    ages = np.linspace(20, 80, 100)
    sites = np.array(["a", "b"] * 50)
    [(train, test)] = holdout_split(ages, 0.2, seed=0, sites=sites)
    assert len(test) == 20 and not set(train) & set(test) and len(train) + len(test) == 100
    assert (
        np.bincount(np.searchsorted(np.quantile(ages, [0.2, 0.4, 0.6, 0.8]), ages[test])).min() >= 3
    )
    assert sorted(np.unique(sites[test], return_counts=True)[1]) == [10, 10]
    with pytest.raises(InputError, match="split must be a fraction"):
        ProtocolConfig(evaluation=Evaluation.SPLIT, test_fraction=1.5).validate(100)


def test_params_are_validated_and_used(one_table):
    assert parse_params(["ridge.alpha=1e3"], ["ridge"]) == {"ridge": {"alpha": 1000.0}}
    with pytest.raises(InputError, match=r"Ridge has no parameter 'C'; valid: \['alpha'"):
        parse_params(["ridge.C=1"], ["ridge"])
    strong = ProtocolConfig(
        regressors=RIDGE, n_splits=4, regressor_params={"ridge": {"alpha": 1e6}}
    )
    weak = ProtocolConfig(regressors=RIDGE, n_splits=4)
    maes = [
        run_protocol(one_table.volumes, one_table.ages, one_table.subjects, c, False)
        .results.query("regressor == 'ridge'")["mae"]
        .mean()
        for c in (strong, weak)
    ]
    assert maes[0] > maes[1] + 1  # a huge penalty shrinks ridge to the mean


def _train_test(n_train=60, n_test=30, seed=0):
    table, participants = freesurfer_example_table(n_train + n_test, n_regions=6, seed=seed)
    frame = table.merge(participants, left_on="Measure:volume", right_on="participant_id")
    frame = frame.drop(columns=["participant_id"])
    return frame.iloc[:n_train].reset_index(drop=True), frame.iloc[n_train:].reset_index(drop=True)


def test_no_leakage_a_test_only_age_column_does_not_help():
    train, test = _train_test()
    rng = np.random.default_rng(0)
    train["leak"] = rng.normal(50, 15, len(train))  # noise in training
    test["leak"] = test["age"] + rng.normal(0, 0.5, len(test))  # the answer, in test only
    regions = [c for c in train.columns if c.startswith(("Left-", "Right-"))]
    honest = evaluate_table(train, test=test, features=regions, regressors=["ridge"])
    leaky = evaluate_table(train, test=test, features=[*regions, "leak"], regressors=["ridge"])
    mae = {n: r.evaluation.set_index("regressor").loc["ridge", "mae"] for n, r in
           (("honest", honest), ("leaky", leaky))}  # fmt: skip
    assert mae["leaky"] > mae["honest"] - 0.5 and mae["leaky"] > 2.0
    assert leaky.info["n_train"] == 60 and leaky.info["n_test"] == 30


def test_every_fit_sees_training_subjects_only(monkeypatch):
    train, test = _train_test(40, 20, seed=1)
    test_rows = {
        tuple(np.round(r, 9))
        for r in (
            test[[c for c in test.columns if c.startswith(("Left-", "Right-"))]].to_numpy()
            / test[["EstimatedTotalIntraCranialVol"]].to_numpy()
        )
    }
    seen = []
    original = BrainAgeRegressor.fit

    def spy(self, X, y):
        seen.extend(tuple(np.round(r, 9)) for r in np.asarray(X, float))
        return original(self, X, y)

    monkeypatch.setattr(BrainAgeRegressor, "fit", spy)
    result = evaluate_table(
        train, test=test, regressors=["ridge", "knn"], tune=True, normalize_icv="etiv"
    )
    assert seen and not test_rows & set(seen)  # scaling, tuning (inner CV) and models: train only
    assert set(result.models["ridge"].params) == {"alpha"}  # tuned on the training table
    tuning = result.info["tuning"]
    assert [row["regressor"] for row in tuning] == ["ridge", "knn"]
    assert set(json.loads(tuning[1]["params"])) == {"n_neighbors"}


def test_api_predict_checks_columns_by_name():
    train, test = _train_test(50, 10, seed=3)
    result = evaluate_table(train, regressors=["ridge"], normalize_icv="auto", n_splits=3)
    assert result.icv.startswith("etiv (column EstimatedTotalIntraCranialVol")
    assert "age" not in result.features and result.excluded["age"] == "age column"
    assert list(result.models["ridge"].feature_names_in_) == list(result.features)
    assert set(result.evaluation["regressor"]) == {"ridge", "mean", "median"}
    shuffled = test[list(reversed(test.columns))]
    np.testing.assert_allclose(result.predict(shuffled), result.predict(test))
    with pytest.raises(InputError, match="needs a DataFrame"):
        result.predict(test[list(result.features)].to_numpy())
    with pytest.raises(InputError, match="missing.*Left-Thalamus"):
        result.predict(test.drop(columns=["Left-Thalamus"]))
    with pytest.raises(InputError, match="ICV column 'EstimatedTotalIntraCranialVol' is missing"):
        result.predict(test.drop(columns=["EstimatedTotalIntraCranialVol"]))
    model = result.models["ridge"]
    with pytest.raises(InputError, match="columns are matched by name"):
        model.predict(np.ones((2, len(result.features))))
    with pytest.raises(InputError, match="must be a pandas DataFrame"):
        evaluate_table(train.to_numpy())


def test_api_split_and_site_stratification():
    train, _ = _train_test(80, 0, seed=4)
    result = evaluate_table(
        train, regressors=["ridge"], split=0.25, stratify_site=True,
        columns=TableColumns(subject="Measure:volume"),
    )  # fmt: skip
    assert result.info["evaluation"] == "split" and result.info["stratify_site"]
    assert set(result.evaluation["n_subjects"]) == {20}
    assert set(result.info["metadata"]["site"]) == {"site1", "site2"}
