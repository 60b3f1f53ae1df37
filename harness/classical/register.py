"""Atlas-to-subject registration in torch: affine (12 degrees of freedom) then a stationary
velocity field, both multi-resolution, with a fixed iteration budget.

The subject is the *fixed* image, the template the *moving* one: the result maps every subject
voxel to a template point, ``phi(x) = A (x + u(x))`` with ``A`` the affine and ``u = exp(v)``
the displacement of a Gaussian-smoothed stationary velocity field ``v`` (scaling and squaring),
in ``grid_sample``'s normalised coordinates (:mod:`harness.classical.transforms`). ``v`` lives on
a grid ``velocity_shrink`` times coarser than the images (its displacement is upsampled
trilinearly); the image pyramid is ``shrink``. Each stage runs Adam on
``similarity + regularization * diffusion(smoothed v)`` for a fixed number of iterations per
level: no early stopping, so the sequence of operations (and with it the stochastic-arithmetic
streams) does not depend on the data. Nothing here is random: under IEEE arithmetic a
registration is a deterministic function of its inputs and :class:`RegistrationConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from harness.classical import transforms as T
from harness.classical.similarity import Similarity, loss_function
from harness.errors import InputError


@dataclass(frozen=True)
class RegistrationConfig:
    """Every setting of a registration (the defaults are the documented pipeline).

    Parameters
    ----------
    shrink : tuple of int
        Down-sampling factor of the images at each level, coarse to fine (average pooling).
    affine_iterations, deform_iterations : tuple of int
        Adam iterations of the affine and of the deformable stage at each level (one count per
        entry of ``shrink``).
    affine_lr, deform_lr : float
        Adam learning rates (normalised coordinates: the field of view spans 2).
    similarity : Similarity
        ``NCC`` (local normalised cross-correlation over ``ncc_window``^3 voxels) or ``MSE``.
    velocity_shrink : int
        The velocity field's grid is the image grid divided by this.
    smoothing_sigma : float
        Gaussian smoothing of the velocity, in velocity-grid voxels.
    regularization : float
        Weight of the diffusion energy of the smoothed velocity.
    squaring_steps : int
        Scaling-and-squaring steps of ``exp(v)``.
    """

    shrink: tuple[int, ...] = (2, 1)
    affine_iterations: tuple[int, ...] = (60, 10)
    deform_iterations: tuple[int, ...] = (60, 20)
    affine_lr: float = 0.01
    deform_lr: float = 0.01
    similarity: Similarity = Similarity.NCC
    ncc_window: int = 5
    velocity_shrink: int = 2
    smoothing_sigma: float = 1.0
    regularization: float = 1.0
    squaring_steps: int = 6

    def check(self) -> None:
        """Raise :class:`InputError` naming the first invalid setting."""
        n = len(self.shrink)
        if n == 0 or any(int(s) < 1 for s in self.shrink):
            raise InputError(f"shrink must be one or more factors >= 1, got {self.shrink!r}")
        for name in ("affine_iterations", "deform_iterations"):
            value = getattr(self, name)
            if len(value) != n or any(int(i) < 0 for i in value):
                raise InputError(f"{name} must give {n} counts >= 0 (one per level), got {value!r}")
        for name in ("affine_lr", "deform_lr", "smoothing_sigma"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.regularization < 0:
            raise InputError(f"regularization must be >= 0, got {self.regularization!r}")
        if self.velocity_shrink < 1:
            raise InputError(f"velocity_shrink must be >= 1, got {self.velocity_shrink!r}")
        if self.squaring_steps < 0 or self.ncc_window < 1 or self.ncc_window % 2 == 0:
            raise InputError(
                "squaring_steps must be >= 0 and ncc_window an odd number >= 1, got "
                f"{self.squaring_steps!r}, {self.ncc_window!r}"
            )

    def to_dict(self) -> dict:
        """JSON-ready settings (the similarity by its value)."""
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return out | {"similarity": self.similarity.value}  # lists: equal after a JSON round trip


@dataclass
class Registration:
    """The result: affine (1, 3, 4), velocity (1, 3, D', H', W') on the velocity grid, and the
    sampling points ``phi`` (1, D, H, W, 3) of every subject voxel in the template."""

    theta: torch.Tensor
    velocity: torch.Tensor
    points: torch.Tensor


def normalize_intensity(volume: torch.Tensor, quantile: float = 0.99) -> torch.Tensor:
    """Scale so the ``quantile`` of the non-zero voxels is 1, then clip to [0, 1.5]."""
    flat = volume.reshape(-1)
    foreground = flat[flat > 0]
    if foreground.numel() == 0:
        raise InputError("cannot normalise an image with no voxel above zero")
    scale = torch.quantile(foreground, quantile)
    return torch.clamp(volume / scale, 0.0, 1.5)


def _pyramid(fixed, moving, config):
    for factor in config.shrink:
        yield T.downsample(fixed, factor), T.downsample(moving, factor)


def _affine_stage(fixed, moving, config, loss_fn) -> torch.Tensor:
    delta = torch.zeros(1, 3, 4, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=config.affine_lr)
    levels = zip(_pyramid(fixed, moving, config), config.affine_iterations, strict=True)
    for (fixed_l, moving_l), iterations in levels:
        shape = tuple(fixed_l.shape[2:])
        for _ in range(iterations):
            optimizer.zero_grad(set_to_none=False)
            points = T.affine_points(T.identity_theta() + delta, shape)
            loss = loss_fn(fixed_l, T.sample(moving_l, points))
            loss.backward()
            optimizer.step()
    return (T.identity_theta() + delta).detach()


def _displacement(velocity, identity_v, config):
    smoothed = T.smooth(velocity, config.smoothing_sigma)
    return smoothed, T.exp_velocity(smoothed, identity_v, config.squaring_steps)


def _points(theta, disp, shape):
    identity = T.affine_points(T.identity_theta(), shape)
    return T.apply_affine(theta, identity + T.field_to_points(T.resize_field(disp, shape)))


def _velocity_shape(shape, config):
    return tuple(max(2, -(-s // config.velocity_shrink)) for s in shape)


def _deform_stage(fixed, moving, theta, config, loss_fn) -> torch.Tensor:
    vshape = _velocity_shape(fixed.shape[2:], config)
    identity_v = T.affine_points(T.identity_theta(), vshape)
    velocity = torch.zeros(1, 3, *vshape, requires_grad=True)
    optimizer = torch.optim.Adam([velocity], lr=config.deform_lr)
    levels = zip(_pyramid(fixed, moving, config), config.deform_iterations, strict=True)
    for (fixed_l, moving_l), iterations in levels:
        shape = tuple(fixed_l.shape[2:])
        for _ in range(iterations):
            optimizer.zero_grad(set_to_none=False)
            smoothed, disp = _displacement(velocity, identity_v, config)
            loss = loss_fn(fixed_l, T.sample(moving_l, _points(theta, disp, shape)))
            loss = loss + config.regularization * T.diffusion_energy(smoothed)
            loss.backward()
            optimizer.step()
    return velocity.detach()


def _loss(config: RegistrationConfig):
    base = loss_function(config.similarity)
    if config.similarity is Similarity.NCC:
        return lambda f, m: base(f, m, window=config.ncc_window)
    return base


def register(
    fixed: torch.Tensor, moving: torch.Tensor, config: RegistrationConfig | None = None
) -> Registration:
    """Register ``moving`` (template) to ``fixed`` (subject), both (1, 1, D, H, W) float32 on
    grids of the same shape, intensities already normalised."""
    config = config or RegistrationConfig()
    config.check()
    if fixed.shape != moving.shape or fixed.dim() != 5:
        raise InputError(
            f"fixed and moving must be (1, 1, D, H, W) of one shape, got {tuple(fixed.shape)} "
            f"and {tuple(moving.shape)}"
        )
    loss_fn = _loss(config)
    theta = _affine_stage(fixed, moving, config, loss_fn)
    velocity = _deform_stage(fixed, moving, theta, config, loss_fn)
    with torch.no_grad():
        identity_v = T.affine_points(T.identity_theta(), tuple(velocity.shape[2:]))
        _, disp = _displacement(velocity, identity_v, config)
        points = _points(theta, disp, tuple(fixed.shape[2:]))
    return Registration(theta=theta, velocity=velocity, points=points)


def warp_labels(indices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour lookup of a (D', H', W') map of small non-negative integers at the
    (1, D, H, W, 3) ``points`` (normalised coordinates of that map); outside gives 0."""
    values = indices.to(torch.float32)[None, None]
    warped = T.sample(values, points, mode="nearest")[0, 0]
    return torch.round(warped).to(torch.int64)
