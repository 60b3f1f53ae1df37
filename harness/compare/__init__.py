"""Comparing result sets (``harness compare``) and gating regressions (``harness check``)."""

from harness.compare.checks import (
    Check,
    DigitLossCheck,
    SlowdownCheck,
    ThresholdCheck,
    parse_fail_if,
    run_checks,
)
from harness.compare.compare import Comparison, compare_results, render_comparison
from harness.compare.stats import SIG_BITS_RESOLUTION, welch_p_value

__all__ = [
    "SIG_BITS_RESOLUTION",
    "Check",
    "Comparison",
    "DigitLossCheck",
    "SlowdownCheck",
    "ThresholdCheck",
    "compare_results",
    "parse_fail_if",
    "render_comparison",
    "run_checks",
    "welch_p_value",
]
