"""Statistics of a comparison: Welch's t-test on timings, the resolution rule for significant bits.

Pure functions; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Significant-bit estimates (``significantdigits``' General method, the default in harness
#: benchmarks) are whole numbers of bits per element: the estimator cannot tell apart two results
#: whose bits differ by one step or less. A difference is called real only when it exceeds this.
SIG_BITS_RESOLUTION = 1.0

#: p-value below which Welch's test calls a timing difference real
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Timing:
    """Per-round timings of one benchmark, or (when the rounds were not saved) their summary."""

    mean: float
    stddev: float | None = None
    rounds: int | None = None
    data: tuple[float, ...] | None = None

    @classmethod
    def from_row(cls, row) -> Timing:
        data = row.get("data")
        data = tuple(float(v) for v in data) if data is not None and len(data) else None
        stddev = row.get("stddev_s")
        rounds = row.get("rounds")
        return cls(
            mean=float(row["mean_s"]),
            stddev=None if _missing(stddev) else float(stddev),
            rounds=None if _missing(rounds) else int(rounds),
            data=data,
        )


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def welch_p_value(a: Timing, b: Timing) -> float:
    """Two-sided p-value of Welch's unequal-variance t-test of ``a`` against ``b``.

    Uses the per-round data when both sides saved it (pytest-benchmark ``stats.data``), else the
    mean, standard deviation and number of rounds. Returns NaN when neither is available
    (fewer than two rounds); 1.0 for identical constant samples and 0.0 for different ones.
    """
    from scipy import stats

    if a.data is not None and b.data is not None and len(a.data) >= 2 and len(b.data) >= 2:
        xa, xb = np.asarray(a.data), np.asarray(b.data)
        mean_a, mean_b = xa.mean(), xb.mean()
        sd_a, sd_b, n_a, n_b = xa.std(ddof=1), xb.std(ddof=1), len(xa), len(xb)
    elif None not in (a.stddev, b.stddev, a.rounds, b.rounds) and min(a.rounds, b.rounds) >= 2:
        mean_a, mean_b, sd_a, sd_b, n_a, n_b = (
            a.mean,
            b.mean,
            a.stddev,
            b.stddev,
            a.rounds,
            b.rounds,
        )
    else:
        return float("nan")
    if sd_a == 0 and sd_b == 0:
        return 1.0 if mean_a == mean_b else 0.0
    result = stats.ttest_ind_from_stats(mean_a, sd_a, n_a, mean_b, sd_b, n_b, equal_var=False)
    return float(result.pvalue)


def timing_verdict(ratio: float, p_value: float, alpha: float = DEFAULT_ALPHA) -> str:
    """``faster``/``slower`` (B against A) when Welch's test rejects equality, else ``same``."""
    if math.isnan(p_value):
        return "untested (too few rounds)"
    if p_value >= alpha:
        return "same"
    return "faster" if ratio > 1 else "slower"


def sig_bits_verdict(delta: float) -> str:
    """``lost bits``/``gained bits`` when ``|delta| > SIG_BITS_RESOLUTION``, else ``same``."""
    if math.isnan(delta):
        return "-"
    if abs(delta) <= SIG_BITS_RESOLUTION:
        return "same (within 1 bit)"
    return "gained bits" if delta > 0 else "lost bits"
