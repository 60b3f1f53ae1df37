"""Stability statistics against brute force and numpy."""

import math
from itertools import combinations

import numpy as np
import pytest

from harness.ensemble import stability
from harness.errors import InputError
from harness.metrics import dice_per_label, min_pairwise_dice, pairwise_dice


def _segs(rng, members=6, shape=(6, 7, 5), labels=(0, 1, 2, 3)):
    base = rng.choice(labels, size=shape)
    segs = np.repeat(base[None], members, axis=0)
    flips = rng.random(segs.shape) < 0.2
    segs[flips] = rng.choice(labels, size=int(flips.sum()))
    return segs


def test_pairwise_dice_is_dice_of_each_pair():
    rng = np.random.default_rng(0)
    segs = _segs(rng)
    labels = [3, 1, 2, 7]  # unsorted, and 7 absent everywhere
    pairs = pairwise_dice(segs, labels)
    expected = [dice_per_label(segs[i], segs[j], labels) for i, j in combinations(range(6), 2)]
    np.testing.assert_array_equal(pairs, np.stack(expected))
    np.testing.assert_array_equal(
        np.nanmin(pairs[:, :3], axis=0), min_pairwise_dice(segs, labels)[:3]
    )
    assert np.isnan(min_pairwise_dice(segs, labels)[3])


def test_matched_min_dice_equals_brute_force_over_subsets():
    rng = np.random.default_rng(1)
    segs = _segs(rng, members=6)
    labels = [1, 2, 3]
    pairs = pairwise_dice(segs, labels)
    subsets = stability.member_subsets(6, 4, rng)
    assert len(subsets) == math.comb(6, 4)
    brute = np.mean([min_pairwise_dice(segs[list(s)], labels) for s in subsets], axis=0)
    np.testing.assert_allclose(stability.matched_min_dice(pairs, subsets), brute, rtol=1e-15)
    # the full set is one subset: the plain minimum over all pairs
    full = stability.member_subsets(6, 6, rng)
    np.testing.assert_array_equal(
        stability.matched_min_dice(pairs, full), min_pairwise_dice(segs, labels)
    )
    # a minimum over fewer pairs is never smaller
    assert np.all(stability.matched_min_dice(pairs, subsets) >= min_pairwise_dice(segs, labels))


def test_member_subsets_random_when_too_many():
    rng = np.random.default_rng(2)
    subsets = stability.member_subsets(12, 5, rng, max_subsets=30)
    assert len(subsets) == len(set(subsets)) == 30
    assert all(len(s) == 5 and list(s) == sorted(s) for s in subsets)
    with pytest.raises(InputError, match="subset size must be in"):
        stability.member_subsets(3, 4, rng)


def test_bootstrap_region_median_against_an_explicit_loop():
    rng = np.random.default_rng(3)
    values = rng.random((20, 9))
    values[2, 4] = np.nan
    indices = stability.bootstrap_indices(20, 200, rng)
    value, low, high = stability.bootstrap_region_median(values, indices)
    assert value == pytest.approx(np.median(np.nanmean(values, axis=0)))
    loop = [np.median(np.nanmean(values[row], axis=0)) for row in indices]
    assert (low, high) == pytest.approx(tuple(np.percentile(loop, [2.5, 97.5])))
    assert low <= value <= high
    constant = np.full((20, 9), 0.8)
    assert stability.bootstrap_region_median(constant, indices) == pytest.approx((0.8,) * 3)


def test_partial_correlation_closed_form_and_precision_matrix():
    rng = np.random.default_rng(4)
    z = rng.normal(size=50)
    x = 2 * z + rng.normal(size=50)
    y = -z + 0.5 * x + rng.normal(size=50)
    r = np.corrcoef([x, y, z])
    closed = (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
    precision = np.linalg.inv(r)
    from_precision = -precision[0, 1] / np.sqrt(precision[0, 0] * precision[1, 1])
    partial = stability.partial_correlation(x, y, z)
    assert partial == pytest.approx(closed, abs=1e-12)
    assert partial == pytest.approx(from_precision, abs=1e-12)
    assert stability.pearson(x, y) == pytest.approx(r[0, 1], abs=1e-12)
    # a correlation that size alone explains vanishes once size is controlled for
    a, b = z + 1e-3 * rng.normal(size=50), 3 * z + 1e-3 * rng.normal(size=50)
    assert stability.pearson(a, b) > 0.99
    assert abs(stability.partial_correlation(a, b, z)) < 0.5
