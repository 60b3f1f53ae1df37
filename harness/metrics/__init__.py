"""Variability metrics: significant digits over samples, Dice agreement, label entropy.

Shape letters: M samples (ensemble members), L labels; ``...`` is the shape of one sample.
"""

from harness.metrics.agreement import (
    dice,
    dice_per_label,
    label_entropy,
    min_over_pairs,
    min_pairwise_dice,
    pairwise_dice,
)
from harness.metrics.sigdigits import (
    ErrorKind,
    SigMethod,
    significant_bits,
    significant_digits,
    summarize,
)

__all__ = [
    "ErrorKind",
    "SigMethod",
    "dice",
    "dice_per_label",
    "label_entropy",
    "min_over_pairs",
    "min_pairwise_dice",
    "pairwise_dice",
    "significant_bits",
    "significant_digits",
    "summarize",
]
