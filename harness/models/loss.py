"""FastSurfer's training loss and its per-pixel weights (v1 ``losses.py``, ``data_utils.py``).

Weights of a label volume (class indices, any number of dimensions), computed once per subject and
view (FastSurfer v1 ``create_weight_mask``):

``w(v) = min(median_k(n_k) / n_{c(v)}, max_weight) + max_edge_weight * [|grad c|(v) > 0]``

where ``n_k`` counts the voxels of each class present in the volume, and ``grad`` is
:func:`numpy.gradient` of the class-index volume (central differences inside, one-sided at the
borders), so a voxel is a boundary voxel when its two neighbours along some axis differ. v1 looks
class weights up by class index, which is only right when every class ``0..K-1`` is present; here
the lookup goes through the present classes, which equals v1 whenever v1 is defined.

Loss of logits ``z`` (N, C, H, W), target classes ``t`` (N, H, W) and weights ``w`` (N, H, W):

``L = Dice + CE``, ``Dice = (1/C) sum_c (1 - 2 sum p_c y_c / (sum (p_c + y_c) + 0.001))`` with
``p = softmax(z)`` and ``y`` the one-hot target, sums over N, H, W;
``CE = mean over pixels of w * (-log p_t)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.errors import InputError

DICE_EPS = 0.001


def class_weights(classes: np.ndarray, max_weight: float = 5.0) -> np.ndarray:
    """Median-frequency class weight of every voxel, capped at ``max_weight``."""
    classes = np.asarray(classes)
    present, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    weights = np.minimum(np.median(counts) / counts, max_weight)
    return weights[inverse.reshape(classes.shape)]


def boundary_mask(classes: np.ndarray) -> np.ndarray:
    """True where the gradient of the class-index volume is non-zero (label edges)."""
    classes = np.asarray(classes, dtype=np.float64)
    if classes.ndim == 0 or min(classes.shape) < 2:
        raise InputError(f"classes must have every axis of length >= 2, got {classes.shape}")
    gradients = np.gradient(classes)
    gradients = gradients if isinstance(gradients, list | tuple) else [gradients]
    return np.sqrt(sum(g * g for g in gradients)) > 0


def weight_mask(
    classes: np.ndarray, max_weight: float = 5.0, max_edge_weight: float = 5.0
) -> np.ndarray:
    """FastSurfer's per-voxel loss weight: capped median-frequency weight plus edge weight.

    Parameters
    ----------
    classes : ndarray of int
        Class indices of one subject's volume (3D) in one view's class space.
    max_weight : float
        Cap of the class weight (v1: 5).
    max_edge_weight : float
        Weight added on boundary voxels (v1: 5).

    Returns
    -------
    ndarray of float32, same shape
    """
    if max_weight <= 0 or max_edge_weight < 0:
        raise InputError(
            f"max_weight must be > 0 and max_edge_weight >= 0, got {max_weight}, {max_edge_weight}"
        )
    weights = class_weights(classes, max_weight)
    weights = weights + max_edge_weight * boundary_mask(classes)
    return weights.astype(np.float32)


def soft_dice_loss(probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over classes of ``1 - soft Dice`` (sums over batch and pixels), v1 ``DiceLoss``."""
    one_hot = torch.zeros_like(probabilities).scatter_(1, target.unsqueeze(1), 1.0)
    dims = (0, 2, 3)
    numerator = 2 * (probabilities * one_hot).sum(dims)
    denominator = (probabilities + one_hot).sum(dims) + DICE_EPS
    return (1 - numerator / denominator).mean()


class FastSurferLoss(nn.Module):
    """Soft Dice plus pixel-weighted cross-entropy (FastSurfer v1 ``CombinedLoss``).

    Parameters
    ----------
    weight_dice, weight_ce : float
        Multipliers of the two terms (v1: 1 and 1).

    Forward returns ``(total, dice, ce)``; see the module docstring for the formulas.
    """

    def __init__(self, weight_dice: float = 1.0, weight_ce: float = 1.0):
        super().__init__()
        self.weight_dice, self.weight_ce = float(weight_dice), float(weight_ce)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor):
        if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
            raise InputError(
                f"logits must be (N, C, H, W) and target (N, H, W), got {tuple(logits.shape)} "
                f"and {tuple(target.shape)}"
            )
        if weights.shape != target.shape:
            raise InputError(
                f"weights must have the target's shape {tuple(target.shape)}, "
                f"got {tuple(weights.shape)}"
            )
        target = target.long()
        dice = soft_dice_loss(torch.softmax(logits, dim=1), target)
        ce = (nn.functional.cross_entropy(logits, target, reduction="none") * weights).mean()
        return self.weight_dice * dice + self.weight_ce * ce, dice, ce
