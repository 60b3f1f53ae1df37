"""Pure tensor math of the registration: grids, affine maps, Gaussian smoothing, the exponential
of a stationary velocity field (scaling and squaring), warping.

Shape letters: N batch (always 1 here), C channels, D/H/W the volume axes (array axes 0/1/2 of
the NIfTI data). Points live in ``grid_sample``'s normalised coordinates (``align_corners=False``:
-1 and 1 are the centres of the first and last voxels), stored last as ``(x, y, z)`` = (W, H, D)
indices, which is the order ``grid_sample`` reads. Every function is made of plain torch ops
(``affine_grid``, ``grid_sample``, ``conv3d``, elementwise arithmetic), so the stochastic-
arithmetic engine sees and perturbs each of them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def identity_theta(dtype=torch.float32) -> torch.Tensor:
    """The (1, 3, 4) identity affine map."""
    return torch.eye(3, 4, dtype=dtype).unsqueeze(0)


def affine_points(theta: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(1, D, H, W, 3) points ``theta @ [x, 1]`` of the voxel centres of a ``shape`` grid."""
    return F.affine_grid(theta, [1, 1, *shape], align_corners=False)


def apply_affine(theta: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Map (1, D, H, W, 3) points through the (1, 3, 4) affine ``theta``."""
    return points @ theta[0, :, :3].T + theta[0, :, 3]


def sample(volume: torch.Tensor, points: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``volume`` (1, C, D', H', W') at ``points`` (1, D, H, W, 3); trilinear by default, zero
    outside for images (``padding_mode="border"`` for fields, see :func:`warp_field`)."""
    return F.grid_sample(volume, points, mode=mode, padding_mode="zeros", align_corners=False)


def warp_field(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """A displacement field (1, 3, D, H, W) at ``points``, border-extended."""
    return F.grid_sample(field, points, mode="bilinear", padding_mode="border", align_corners=False)


def gaussian_kernel1d(sigma: float, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1D Gaussian of standard deviation ``sigma`` voxels, radius ``ceil(2 sigma)``."""
    radius = max(1, math.ceil(2.0 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def smooth(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian smoothing of every channel of (1, C, D, H, W), replicate-padded."""
    from harness.classical.similarity import separable_filter

    if sigma <= 0:
        return field
    return separable_filter(field, gaussian_kernel1d(sigma, field.dtype), pad_mode="replicate")


def field_to_points(field: torch.Tensor) -> torch.Tensor:
    """(1, 3, D, H, W) displacement -> (1, D, H, W, 3), the layout points are stored in."""
    return field.permute(0, 2, 3, 4, 1)


def exp_velocity(velocity: torch.Tensor, identity: torch.Tensor, steps: int) -> torch.Tensor:
    """Displacement of the diffeomorphism ``exp(v)`` by scaling and squaring.

    ``u_0 = v / 2^steps``; ``u_{k+1} = u_k + u_k o (id + u_k)``; returns ``u_steps``
    (1, 3, D, H, W) in normalised coordinates. ``identity`` is the (1, D, H, W, 3) identity grid
    of the field's shape.
    """
    disp = velocity / (2.0**steps)
    for _ in range(steps):
        disp = disp + warp_field(disp, identity + field_to_points(disp))
    return disp


def resize_field(field: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Trilinear resampling of a (1, C, D, H, W) field to ``shape`` (values unchanged: a
    displacement in normalised coordinates does not scale with the grid)."""
    if tuple(field.shape[2:]) == tuple(shape):
        return field
    return F.interpolate(field, size=shape, mode="trilinear", align_corners=False)


def downsample(volume: torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool a (1, C, D, H, W) volume by ``factor`` (1 returns it unchanged)."""
    if factor == 1:
        return volume
    return F.avg_pool3d(volume, factor, stride=factor, ceil_mode=True)


def diffusion_energy(field: torch.Tensor) -> torch.Tensor:
    """Mean squared forward difference of a (1, C, D, H, W) field over the three axes."""
    dz = field[:, :, 1:] - field[:, :, :-1]
    dy = field[:, :, :, 1:] - field[:, :, :, :-1]
    dx = field[..., 1:] - field[..., :-1]
    return (dz * dz).mean() + (dy * dy).mean() + (dx * dx).mean()


def voxel_from_normalised(shape) -> np.ndarray:
    """(4, 4) matrix taking a normalised point ``(x, y, z, 1)`` of a ``shape`` (D, H, W) grid to
    its array index ``(i, j, k, 1)`` (``align_corners=False``: ``i = ((z + 1) D - 1) / 2``)."""
    d, h, w = (float(s) for s in shape)
    m = np.zeros((4, 4))
    for row, (col, n) in enumerate(((2, d), (1, h), (0, w))):
        m[row, col] = n / 2.0
        m[row, 3] = (n - 1.0) / 2.0
    m[3, 3] = 1.0
    return m


def normalised_map(src_shape, src_affine, dst_shape, dst_affine) -> torch.Tensor:
    """The (1, 3, 4) affine taking normalised points of a source grid to normalised points of a
    destination grid through their voxel-to-world ``affine`` matrices (float64 math, float32
    result)."""
    src = np.asarray(src_affine, dtype=np.float64) @ voxel_from_normalised(src_shape)
    dst = np.asarray(dst_affine, dtype=np.float64) @ voxel_from_normalised(dst_shape)
    full = np.linalg.inv(dst) @ src
    return torch.from_numpy(full[:3]).to(torch.float32).unsqueeze(0)
