"""Group comparisons of singular-value trajectories.

Normalisation for group size (``normalised`` column): a group's weight gradient is a *sum* over
its ``N_g`` rows, so its singular values grow about like ``N_g`` (aligned per-sample gradients)
— ``sigma / N_g`` is the spectrum of the group's *mean* gradient. For the inputs ``A_g`` and
adjoints ``Delta_g``, ``sigma_i^2`` are eigenvalues of ``A_g^T A_g``, a sum of ``N_g`` outer
products, so ``sigma / sqrt(N_g)`` is the spectrum of the per-sample second-moment matrix. Both
estimate quantities that do not depend on the group's size.

For every (layer, quantity, index, epoch) and every pair of groups, the samples are the
normalised values at the probed steps of that epoch: Welch's t-test and the Mann-Whitney U test
(two-sided), Hedges' g and the rank-biserial correlation, and Benjamini-Hochberg FDR across all
tests of the table (separately for each test family).

Rank tolerance: singular values that are round-off are not tested. With ``C`` output classes the
output layer's gradient has rank <= C - 1 (the softmax adjoint's rows sum to zero), so its
``sigma_C`` is ~1e-8 sigma_1 in float32: noise, not a property of the group. A value is excluded
when ``value <= rtol * sigma_1`` of its own spectrum (same run, step, layer, group and quantity),
with ``rtol = 1000 * eps(dtype)`` by default — numpy's ``matrix_rank`` rule ``max(M, N) * eps``
for matrices up to ~1000 wide, the width of the probed layers (1.2e-4 in float32, 2.2e-13 in
float64). :func:`summarise` reports how many were excluded.
"""

from __future__ import annotations

import itertools

import numpy as np

from harness.errors import InputError

KEYS = ["layer", "quantity", "index", "epoch"]
#: one spectrum: the values of one matrix
SPECTRUM = ["run", "epoch", "step", "layer", "group", "quantity"]
#: default rank tolerance, in units of the dtype's machine epsilon
RANK_RTOL_EPS = 1000


def rank_rtol(dtype=np.float32) -> float:
    """Default relative rank tolerance of spectra computed in ``dtype``."""
    return RANK_RTOL_EPS * float(np.finfo(dtype).eps)


def above_rank_tolerance(frame, rtol: float) -> np.ndarray:
    """Boolean mask of rows whose value exceeds ``rtol`` times their spectrum's sigma_1."""
    keys = [k for k in SPECTRUM if k in frame.columns]
    sigma_1 = frame.groupby(keys, sort=False)["value"].transform("max").to_numpy(float)
    return frame["value"].to_numpy(float) > rtol * sigma_1


def normalise(frame):
    """Add a ``normalised`` column: grad / N_g, act and adj / sqrt(N_g)."""
    frame = frame.copy()
    size = frame["group_size"].astype(float)
    scale = np.where(frame["quantity"] == "grad", size, np.sqrt(size))
    frame["normalised"] = frame["value"] / scale
    return frame


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised mean difference (a - b) with the small-sample correction."""
    n_a, n_b = len(a), len(b)
    pooled = ((n_a - 1) * a.var(ddof=1) + (n_b - 1) * b.var(ddof=1)) / (n_a + n_b - 2)
    if pooled <= 0:
        return float("nan")
    d = (a.mean() - b.mean()) / np.sqrt(pooled)
    return float(d * (1 - 3 / (4 * (n_a + n_b) - 9)))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values); NaN p-values stay NaN and do not count as tests."""
    from scipy.stats import false_discovery_control

    q = np.full_like(p, np.nan, dtype=float)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = false_discovery_control(p[ok], method="bh")
    return q


def _compare(a: np.ndarray, b: np.ndarray) -> dict:
    from scipy.stats import mannwhitneyu, ttest_ind

    row = {"n_a": len(a), "n_b": len(b), "mean_a": a.mean(), "mean_b": b.mean()}
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return row | {"t_stat": np.nan, "t_p": np.nan, "u_stat": np.nan, "u_p": np.nan,
                      "hedges_g": np.nan, "rank_biserial": np.nan}  # fmt: skip
    t = ttest_ind(a, b, equal_var=False)
    u = mannwhitneyu(a, b, alternative="two-sided")
    return row | {
        "t_stat": float(t.statistic),
        "t_p": float(t.pvalue),
        "u_stat": float(u.statistic),
        "u_p": float(u.pvalue),
        "hedges_g": hedges_g(a, b),
        "rank_biserial": float(2 * u.statistic / (len(a) * len(b)) - 1),
    }


def compare_groups(frame, alpha: float = 0.05, rtol: float | None = None):
    """Test every (layer, quantity, index, epoch) for differences between each pair of groups.

    Parameters
    ----------
    frame : DataFrame
        A spectra table (columns of :data:`harness.introspect.COLUMNS`).
    alpha : float
        FDR level for the ``*_significant`` columns.
    rtol : float, optional
        Rank tolerance relative to sigma_1 (default :func:`rank_rtol` of float32); smaller
        values are round-off and are not tested.

    Returns
    -------
    DataFrame
        One row per test: keys, ``group_a``, ``group_b``, sample sizes and means (normalised
        values), ``t_stat, t_p, t_q, u_stat, u_p, u_q, hedges_g, rank_biserial``,
        ``t_significant``, ``u_significant``. ``table.attrs["excluded_below_rank_tolerance"]``
        counts the excluded values and ``table.attrs["rank_rtol"]`` holds the tolerance.
    """
    import pandas as pd

    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
    rtol = rank_rtol() if rtol is None else rtol
    if not 0 <= rtol < 1:
        raise InputError(f"rtol must be in [0, 1), got {rtol!r}")
    keep = above_rank_tolerance(frame, rtol)
    excluded = int((~keep).sum())
    frame = normalise(frame[keep])
    groups = sorted(frame["group"].astype(str).unique())
    if len(groups) < 2:
        raise InputError(f"comparing groups needs at least two groups, got {groups}")
    rows = []
    with np.errstate(all="raise", under="ignore"):
        for keys, sub in frame.groupby(KEYS, sort=True):
            by_group = {g: s["normalised"].to_numpy(float) for g, s in sub.groupby("group")}
            for g_a, g_b in itertools.combinations(groups, 2):
                if g_a not in by_group or g_b not in by_group:
                    continue
                with np.errstate(all="ignore"):  # scipy's own degenerate-case warnings
                    result = _compare(by_group[g_a], by_group[g_b])
                rows.append(dict(zip(KEYS, keys, strict=True)) | {"group_a": g_a,
                                                                   "group_b": g_b} | result)  # fmt: skip
    table = pd.DataFrame(rows)
    table.attrs |= {"excluded_below_rank_tolerance": excluded, "rank_rtol": rtol}
    if table.empty:
        return table
    for test in ("t", "u"):
        table[f"{test}_q"] = benjamini_hochberg(table[f"{test}_p"].to_numpy(float))
        table[f"{test}_significant"] = table[f"{test}_q"] < alpha
    return table


def summarise(stats) -> dict:
    """Counts of tests and FDR discoveries per quantity (for manifests and the CLI)."""
    excluded = {
        key: stats.attrs[key] for key in ("excluded_below_rank_tolerance", "rank_rtol")
        if key in stats.attrs
    }  # fmt: skip
    if stats.empty:
        return {"tests": 0} | excluded
    out = {"tests": int(stats["t_p"].notna().sum())} | excluded
    for test in ("t", "u"):
        out[f"{test}_discoveries"] = int(stats[f"{test}_significant"].sum())
        out[f"{test}_discoveries_by_quantity"] = {
            q: int(s[f"{test}_significant"].sum()) for q, s in stats.groupby("quantity")
        }
    return out
