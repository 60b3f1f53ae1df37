"""Agreement between categorical outputs (segmentations): Dice and label entropy.

Dice of label ``l`` between segmentations ``a`` and ``b``:
``2 |a==l & b==l| / (|a==l| + |b==l|)``, NaN when ``l`` is absent from both.
The anchor paper's stability metric is, per region, the minimum Dice over all pairs of ensemble
members. Label entropy at a voxel is ``-sum_l p_l log2 p_l`` with ``p_l`` the fraction of members
that assign label ``l`` there (0 where all members agree; ``log2 M`` at most).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from harness.errors import InputError


def _as_int_array(name: str, value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().to("cpu").numpy()
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0):
            return array.astype(np.int64)
        raise InputError(f"{name} must hold integer labels, got dtype {array.dtype}")
    return array


def _label_index(seg: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Map labels to 0..L-1 and any other value to L."""
    pos = np.searchsorted(labels, seg)
    pos = np.clip(pos, 0, len(labels) - 1)
    return np.where(labels[pos] == seg, pos, len(labels))


def _prepare_labels(labels) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise InputError(f"labels must be a non-empty 1-D list, got shape {labels.shape}")
    order = np.argsort(labels, kind="stable")
    return labels[order], order


def _dice_from_indices(ia: np.ndarray, ib: np.ndarray, n_labels: int) -> np.ndarray:
    size = n_labels + 1
    same = ia == ib
    inter = np.bincount(ia[same], minlength=size)[:n_labels]
    total = (np.bincount(ia, minlength=size) + np.bincount(ib, minlength=size))[:n_labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * inter / np.maximum(total, 1), np.nan)


def dice_per_label(seg_a, seg_b, labels) -> np.ndarray:
    """Dice coefficient of each label in ``labels`` between two segmentations.

    Returns
    -------
    numpy.ndarray, shape (L,)
        In the order of ``labels``; NaN where the label is absent from both.
    """
    a = _as_int_array("seg_a", seg_a).ravel()
    b = _as_int_array("seg_b", seg_b).ravel()
    if a.shape != b.shape:
        raise InputError(f"segmentations must have the same shape, got {a.shape} and {b.shape}")
    sorted_labels, order = _prepare_labels(labels)
    result_sorted = _dice_from_indices(
        _label_index(a, sorted_labels), _label_index(b, sorted_labels), len(sorted_labels)
    )
    result = np.empty_like(result_sorted)
    result[order] = result_sorted
    return result


def dice(seg_a, seg_b, label: int) -> float:
    """Dice of one label between two segmentations (NaN when absent from both)."""
    return float(dice_per_label(seg_a, seg_b, [label])[0])


def pairwise_dice(segs, labels) -> np.ndarray:
    """Per label, the Dice of every pair of members.

    Parameters
    ----------
    segs : array-like, shape (M, ...)
        M >= 2 segmentations of the same subject.
    labels : sequence of int, length L

    Returns
    -------
    numpy.ndarray, shape (M (M - 1) / 2, L)
        Pairs in ``itertools.combinations(range(M), 2)`` order; NaN where a label is absent from
        both members of a pair.
    """
    s = _as_int_array("segs", segs)
    if s.ndim < 2 or s.shape[0] < 2:
        raise InputError(f"segs must have shape (M, ...) with M >= 2, got {s.shape}")
    sorted_labels, order = _prepare_labels(labels)
    idx = [_label_index(m.ravel(), sorted_labels) for m in s]
    pair_sorted = np.stack(
        [
            _dice_from_indices(idx[i], idx[j], len(sorted_labels))
            for i, j in combinations(range(len(idx)), 2)
        ]
    )
    result = np.empty_like(pair_sorted)
    result[:, order] = pair_sorted
    return result


def min_pairwise_dice(segs, labels) -> np.ndarray:
    """Per label, the minimum Dice over all pairs of members.

    Parameters
    ----------
    segs : array-like, shape (M, ...)
        M >= 2 segmentations of the same subject.
    labels : sequence of int, length L

    Returns
    -------
    numpy.ndarray, shape (L,)
        NaN for a label absent from every pair.
    """
    return min_over_pairs(pairwise_dice(segs, labels))


def min_over_pairs(pair_dice: np.ndarray) -> np.ndarray:
    """Per label, the minimum over pairs of (P, L) pairwise Dice, ignoring NaN pairs."""
    filled = np.where(np.isnan(pair_dice), np.inf, pair_dice).min(axis=0)
    return np.where(np.isinf(filled), np.nan, filled)


def label_entropy(segs) -> np.ndarray:
    """Voxel-wise entropy (bits) of the labels assigned by M members.

    Parameters
    ----------
    segs : array-like, shape (M, ...)

    Returns
    -------
    numpy.ndarray, shape (...), float64
    """
    s = _as_int_array("segs", segs)
    if s.ndim < 2 or s.shape[0] < 1:
        raise InputError(f"segs must have shape (M, ...), got {s.shape}")
    n_members = s.shape[0]
    entropy = np.zeros(s.shape[1:], dtype=np.float64)
    for label in np.unique(s):
        p = (s == label).sum(axis=0) / n_members
        nz = p > 0
        entropy[nz] -= p[nz] * np.log2(p[nz])
    return entropy
