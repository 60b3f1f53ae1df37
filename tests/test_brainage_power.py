"""Paired arm comparison and power, against scipy and simulation."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness.brainage import power


def test_mde_and_power_are_inverse_and_match_the_textbook_formula():
    sd, n = 2.5, 48
    mde = power.minimum_detectable_difference(sd, n)
    assert mde == pytest.approx((1.959964 + 0.841621) * sd / np.sqrt(n), rel=1e-5)
    assert power.power_to_detect(mde, sd, n) == pytest.approx(0.8, abs=1e-9)
    assert power.power_to_detect(0.0, sd, n) == pytest.approx(0.025, abs=1e-9)  # one tail
    assert power.ANCHOR_EFFECT == pytest.approx(0.78)


def test_power_matches_a_simulated_paired_t_test():
    rng = np.random.default_rng(0)
    delta, sd, n, trials = 0.78, 2.0, 40, 4000
    d = rng.normal(delta, sd, size=(trials, n))
    hits = stats.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05
    assert hits.mean() == pytest.approx(power.power_to_detect(delta, sd, n), abs=0.03)


def test_paired_difference_against_numpy_and_scipy():
    rng = np.random.default_rng(1)
    a = rng.gamma(3.0, 3.0, 30)
    b = a + rng.normal(0.5, 1.0, 30)
    row = power.paired_difference(a, b, np.random.default_rng(2), n_boot=500)
    d = a - b
    assert row["diff_mean"] == pytest.approx(d.mean()) and row["n_subjects"] == 30
    assert row["diff_sd"] == pytest.approx(d.std(ddof=1))
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(d).pvalue)
    boot = d[np.random.default_rng(2).integers(0, 30, size=(500, 30))].mean(axis=1)
    assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx(
        tuple(np.percentile(boot, [2.5, 97.5]))
    )
    assert row["diff_ci_high"] < 0  # b is worse by 0.5 years: the interval excludes 0


def test_compare_arms_pairs_subjects_at_the_largest_k():
    rows = []
    for subject, age in (("s1", 30.0), ("s2", 50.0), ("s3", 70.0), ("s4", 40.0)):
        rows.append(("rf", "none", 0, subject, age, age + 4))
        for k in (1, 2):
            rows.append(("rf", "ensemble", k, subject, age, age + (3 if k == 2 else 9)))
            rows.append(("rf", "gaussian", k, subject, age, age - 5))
    frame = pd.DataFrame(rows, columns=["regressor", "augmentation", "k", "subject", "age",
                                        "predicted"])  # fmt: skip
    table = power.compare_arms(frame).set_index(["arm_a", "arm_b"])
    assert set(table["k"]) == {2}
    assert table.loc[("ensemble", "none"), "diff_mean"] == pytest.approx(-1.0)
    assert table.loc[("gaussian", "none"), "diff_mean"] == pytest.approx(1.0)
    assert table.loc[("ensemble", "gaussian"), "diff_mean"] == pytest.approx(-2.0)
    assert table.loc[("ensemble", "none"), "n_subjects"] == 4
