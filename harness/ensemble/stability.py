"""Statistics of ensemble stability (pure array functions; wiring in :mod:`.analyze`).

Shape letters: ``S`` subjects, ``L`` regions (labels), ``M`` members, ``P = M (M - 1) / 2``
member pairs, ``B`` bootstrap resamples.

- **Matched ensemble size.** The anchor's stability metric is the minimum Dice over all member
  pairs; a minimum over more pairs is smaller, so factors with different member counts are not
  comparable. :func:`matched_min_dice` gives the mean, over subsets of ``k`` members, of the
  minimum over the subset's pairs (all subsets when there are at most ``max_subsets``, else
  random ones).
- **Summaries with confidence intervals.** :func:`bootstrap_region_median`: per region the mean
  over subjects, then the median over regions; a percentile bootstrap over subjects (the unit
  that is sampled) gives the interval.
- **Correlation of instabilities.** :func:`partial_correlation` of two factors' per-region
  instabilities controlling for region size (small regions are unstable under every factor, so
  size alone makes any two factors correlate).
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from harness.errors import InputError
from harness.metrics import min_over_pairs


def pair_index(n_members: int) -> list[tuple[int, int]]:
    """Member pairs in the order of :func:`harness.metrics.pairwise_dice`."""
    return list(combinations(range(n_members), 2))


def member_subsets(
    n_members: int, size: int, rng: np.random.Generator, max_subsets: int = 100
) -> list[tuple[int, ...]]:
    """Subsets of ``size`` members: all of them when there are at most ``max_subsets``, else
    ``max_subsets`` distinct ones drawn at random."""
    if not 2 <= size <= n_members:
        raise InputError(f"subset size must be in [2, {n_members}], got {size}")
    total = math.comb(n_members, size)
    if total <= max_subsets:
        return list(combinations(range(n_members), size))
    chosen: set[tuple[int, ...]] = set()
    while len(chosen) < max_subsets:
        chosen.add(tuple(sorted(rng.choice(n_members, size, replace=False).tolist())))
    return sorted(chosen)


def matched_min_dice(pair_dice: np.ndarray, subsets: list[tuple[int, ...]]) -> np.ndarray:
    """Mean over ``subsets`` of the per-region minimum Dice over each subset's pairs.

    Parameters
    ----------
    pair_dice : ndarray (P, L)
        Dice of every member pair (NaN where a region is absent from both members).
    subsets : list of tuples of member indices

    Returns
    -------
    ndarray (L,)
        NaN for a region absent from every pair of every subset.
    """
    n_members = round((1 + math.sqrt(1 + 8 * len(pair_dice))) / 2)
    where = {pair: i for i, pair in enumerate(pair_index(n_members))}
    minima = [
        min_over_pairs(pair_dice[[where[p] for p in combinations(subset, 2)]]) for subset in subsets
    ]
    with np.errstate(invalid="ignore"), _quiet_nan():
        return np.nanmean(np.stack(minima), axis=0)


def bootstrap_indices(n_subjects: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(B, S) subject indices drawn with replacement."""
    return rng.integers(0, n_subjects, size=(n_boot, n_subjects))


def region_median(values: np.ndarray) -> float:
    """Median over regions of the per-region mean over subjects of ``values`` (S, L)."""
    with _quiet_nan():
        return float(np.nanmedian(np.nanmean(values, axis=0)))


def bootstrap_region_median(
    values: np.ndarray, indices: np.ndarray, level: float = 0.95
) -> tuple[float, float, float]:
    """:func:`region_median` of ``values`` (S, L) and its percentile bootstrap interval.

    ``indices`` (B, S) are the resampled subjects (:func:`bootstrap_indices`), shared between
    the quantities of one table so their intervals come from the same resamples.
    """
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    with _quiet_nan():
        resampled = np.nanmedian(np.nanmean(values[indices], axis=1), axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(resampled, [tail, 100 - tail])
    return region_median(values), float(low), float(high)


def partial_correlation(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Pearson correlation of ``x`` and ``y`` after regressing each on ``z`` (with intercept)."""
    x, y, z = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
    design = np.column_stack([np.ones_like(z), z])
    rx = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    ry = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry / denominator) if denominator > 0 else float("nan")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (NaN when either side is constant)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy / denominator) if denominator > 0 else float("nan")


class _quiet_nan:
    """Silence numpy's "mean of empty slice" for all-NaN regions (their result is NaN)."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        return self

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)
