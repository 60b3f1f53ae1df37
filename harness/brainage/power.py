"""Paired comparison of augmentation arms, and whether a difference of the anchor's size could be
detected.

Every subject is predicted once per arm (in its own test fold), so two arms are compared on the
per-subject absolute errors ``e_a`` and ``e_b``: ``d = e_a - e_b`` (negative: arm a is better).
Reported: the mean difference with a percentile bootstrap interval over subjects, the Wilcoxon
signed-rank p-value, and, from the observed spread ``s_d`` of ``d`` over ``n`` subjects, the
minimum detectable difference at 80% power and two-sided alpha 0.05,
``MDE = (z_{0.975} + z_{0.8}) s_d / sqrt(n)``, and the power to detect the anchor's difference
``delta`` (random forest 9.32 -> 8.54 years: 0.78), ``Phi(delta sqrt(n) / s_d - z_{0.975})``
(normal approximation of the paired t-test; its other tail is negligible).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from harness.errors import InputError
from harness.runs.catalogue import BRAINAGE_COMPARISON

#: the anchor's random-forest improvement with 15 SR members (years): 9.32 -> 8.54
ANCHOR_EFFECT = 9.32 - 8.54
ALPHA, POWER = 0.05, 0.8


def minimum_detectable_difference(sd: float, n: int, alpha=ALPHA, power=POWER) -> float:
    """Smallest mean paired difference a two-sided test at ``alpha`` finds with ``power``."""
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd / np.sqrt(n))


def power_to_detect(delta: float, sd: float, n: int, alpha=ALPHA) -> float:
    """Power of a two-sided paired test at ``alpha`` against a true mean difference ``delta``."""
    if sd <= 0:
        return 1.0 if delta else float("nan")
    return float(stats.norm.cdf(abs(delta) * np.sqrt(n) / sd - stats.norm.ppf(1 - alpha / 2)))


def paired_difference(
    errors_a: np.ndarray, errors_b: np.ndarray, rng: np.random.Generator, n_boot: int = 2000
) -> dict:
    """Mean of ``errors_a - errors_b`` with its bootstrap interval, Wilcoxon p, MDE and power."""
    a, b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 3:
        raise InputError(
            f"paired errors must be two 1-D arrays of >= 3 subjects, got {a.shape}, {b.shape}"
        )
    d = a - b
    n, sd = len(d), float(d.std(ddof=1))
    boot = d[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return {
        "n_subjects": n, "mae_a": float(a.mean()), "mae_b": float(b.mean()),
        "diff_mean": float(d.mean()), "diff_ci_low": float(low), "diff_ci_high": float(high),
        "diff_sd": sd, "wilcoxon_p": p,
        "mde_80": minimum_detectable_difference(sd, n),
        "power_anchor_effect": power_to_detect(ANCHOR_EFFECT, sd, n),
    }  # fmt: skip


def compare_arms(predictions: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per regressor, at the largest ensemble size k: ensemble vs none, gaussian vs none and
    ensemble vs gaussian, on per-subject absolute errors (``predictions.tsv`` of a run)."""
    rng = np.random.default_rng(seed)
    frame = predictions.assign(abs_error=(predictions["predicted"] - predictions["age"]).abs())
    rows = []
    for regressor, table in frame.groupby("regressor", sort=False):
        k = int(table["k"].max())
        arms = {
            arm: table[(table["augmentation"] == arm) & (table["k"] == (0 if arm == "none" else k))]
            .groupby("subject")["abs_error"].mean()
            for arm in ("none", "ensemble", "gaussian")
        }  # fmt: skip
        for a, b in (("ensemble", "none"), ("gaussian", "none"), ("ensemble", "gaussian")):
            if arms[a].empty or arms[b].empty:
                continue
            common = arms[a].index.intersection(arms[b].index)
            row = paired_difference(arms[a][common].to_numpy(), arms[b][common].to_numpy(), rng)
            rows.append({"regressor": regressor, "k": k, "arm_a": a, "arm_b": b} | row)
    return pd.DataFrame(rows, columns=list(BRAINAGE_COMPARISON.columns))
