"""Image similarity losses (lower is better), pure tensor math on (1, 1, D, H, W) volumes."""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F

from harness.enums import parse_enum


class Similarity(Enum):
    """The similarity a registration minimises."""

    NCC = "ncc"  # local normalised cross-correlation, 1 - mean squared local correlation
    MSE = "mse"  # mean squared intensity difference

    @classmethod
    def parse(cls, value: Similarity | str) -> Similarity:
        """The similarity named by ``value`` (:func:`harness.enums.parse_enum`)."""
        return parse_enum(cls, value, "similarity")


def mse(fixed: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    """Mean squared difference."""
    diff = fixed - moved
    return (diff * diff).mean()


def box_sum(x: torch.Tensor, window: int) -> torch.Tensor:
    """Sum over cubic windows of ``window`` voxels of every channel of (1, C, D, H, W), zero
    outside (:func:`separable_filter` with a box)."""
    return separable_filter(x, torch.ones(window, dtype=x.dtype), pad_mode="constant")


def separable_filter(x: torch.Tensor, taps: torch.Tensor, pad_mode: str) -> torch.Tensor:
    """Filter every channel of (1, C, D, H, W) by the odd-length 1D ``taps`` along each axis:
    three depthwise ``conv3d`` passes over the volume padded by ``pad_mode`` (``F.pad``)."""
    channels, length = x.shape[1], taps.numel()
    out = x
    for axis in range(3):
        shape = [1, 1, 1]
        shape[axis] = length
        kernel = taps.reshape(1, 1, *shape).expand(channels, 1, *shape).contiguous()
        padding = [0] * 6
        padding[2 * (2 - axis)] = padding[2 * (2 - axis) + 1] = (
            length // 2
        )  # F.pad: last axis first
        out = F.conv3d(F.pad(out, padding, mode=pad_mode), kernel, groups=channels)
    return out


def local_ncc(fixed: torch.Tensor, moved: torch.Tensor, window: int = 5, eps: float = 1e-5):
    """``1 - mean(cc)`` with ``cc = cov^2 / (var_f var_m + eps)`` over cubic windows of ``window``
    voxels (VoxelMorph's NCC; box sums by :func:`box_sum`)."""
    n = float(window**3)
    sums = box_sum(
        torch.cat([fixed, moved, fixed * fixed, moved * moved, fixed * moved], 1), window
    )
    sum_f, sum_m, sum_ff, sum_mm, sum_fm = sums.unbind(1)
    cross = sum_fm - sum_f * sum_m / n
    var_f = sum_ff - sum_f * sum_f / n
    var_m = sum_mm - sum_m * sum_m / n
    return 1.0 - (cross * cross / (var_f * var_m + eps)).mean()


def loss_function(similarity: Similarity):
    """The loss of ``similarity``."""
    return {Similarity.NCC: local_ncc, Similarity.MSE: mse}[similarity]
