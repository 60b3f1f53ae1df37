from itertools import combinations

import numpy as np
import pytest

from harness.errors import InputError
from harness.metrics import dice, dice_per_label, label_entropy, min_pairwise_dice


def _brute_dice(a, b, label):
    inter = np.sum((a == label) & (b == label))
    total = np.sum(a == label) + np.sum(b == label)
    return np.nan if total == 0 else 2 * inter / total


def test_dice_per_label_matches_brute_force():
    rng = np.random.default_rng(0)
    a = rng.choice([0, 2, 17, 1002], size=(12, 13))
    b = np.where(rng.random(a.shape) < 0.2, rng.choice([0, 2, 17, 99], size=a.shape), a)
    labels = [17, 2, 1002, 99, 5]
    got = dice_per_label(a, b, labels)
    want = np.array([_brute_dice(a, b, lab) for lab in labels])
    np.testing.assert_allclose(got, want, equal_nan=True)
    assert np.isnan(got[-1])  # label 5 absent from both
    assert dice(a, a, 17) == 1.0


def test_min_pairwise_dice_matches_brute_force():
    rng = np.random.default_rng(1)
    base = rng.choice([0, 1, 2, 3], size=(8, 9, 4))
    segs = np.stack([np.where(rng.random(base.shape) < 0.1 * k, 0, base) for k in range(4)])
    labels = [1, 2, 3, 7]
    got = min_pairwise_dice(segs, labels)
    want = []
    for lab in labels:
        vals = [_brute_dice(segs[i], segs[j], lab) for i, j in combinations(range(4), 2)]
        vals = [v for v in vals if not np.isnan(v)]
        want.append(min(vals) if vals else np.nan)
    np.testing.assert_allclose(got, want, equal_nan=True)


def test_label_entropy():
    segs = np.array([[0, 1, 1, 2], [0, 1, 2, 3], [0, 1, 1, 4], [0, 1, 2, 5]])
    ent = label_entropy(segs)
    np.testing.assert_allclose(ent, [0.0, 0.0, 1.0, 2.0])


def test_agreement_errors():
    with pytest.raises(InputError, match="same shape"):
        dice_per_label(np.zeros(3, int), np.zeros(4, int), [0])
    with pytest.raises(InputError, match="integer labels"):
        dice_per_label(np.array([0.5]), np.array([0.5]), [0])
    with pytest.raises(InputError, match="M >= 2"):
        min_pairwise_dice(np.zeros((1, 3), int), [0])
