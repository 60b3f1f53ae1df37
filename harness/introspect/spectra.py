"""Singular values of per-group weight gradients, activations and adjoints (pure tensor functions).

Shape letters: ``N`` rows (samples, or samples x positions), ``h_in`` / ``h_out`` layer widths,
``C`` channels, ``K`` kernel positions (product of the kernel size), ``L`` output positions.

For a layer with activations ``A`` (N x h_in) and adjoints ``D`` (N x h_out) the weight gradient is
``A^T D`` (h_in x h_out) and its rank is at most ``N``. With ``A^T = Q_A R_A`` and ``D^T = Q_D R_D``
(thin QR), ``A^T D = Q_A (R_A R_D^T) Q_D^T`` and ``Q_A``, ``Q_D`` have orthonormal columns, so the
nonzero singular values of the gradient are those of the small ``N x N`` core ``R_A R_D^T``
(docs/design.md, "Spectral introspection"). Nothing here draws random numbers (no randomized SVD), so probing never
touches a random stream of the training run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def top_k(values: torch.Tensor, k: int | None, length: int | None = None) -> torch.Tensor:
    """Descending ``values`` zero-padded to ``length`` (the matrix's min dimension), first ``k``."""
    if length is not None and values.numel() < length:
        values = torch.cat([values, values.new_zeros(length - values.numel())])
    return values if k is None else values[:k]


def svdvals(matrix: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Singular values of a 2-D tensor, descending, top ``k`` (all when ``k`` is None)."""
    return top_k(torch.linalg.svdvals(matrix), k, min(matrix.shape))


def small_factor(rows: torch.Tensor) -> torch.Tensor:
    """A square matrix of side ``min(n, c)`` with the singular values of ``rows`` (n x c).

    Tall: the ``R`` of ``rows = Q R``; short: the ``R`` of ``rows^T = Q R`` (then ``rows =
    R^T Q^T``) — the factor :func:`qr_core_svdvals` needs, so one QR serves both spectra.
    """
    if rows.shape[0] > rows.shape[1]:
        return torch.linalg.qr(rows, mode="r").R
    return torch.linalg.qr(rows.T, mode="r").R


def batched_gram(rows: torch.Tensor) -> torch.Tensor:
    """Per-matrix Gram ``rows^T rows`` of a batch (B, n, c) in float64 -> (B, c, c).

    Float64 keeps the squared condition number harmless for the leading singular values: the
    eigenvalues of the Gram are exact to ~1e-16 * sigma_1^2, so sigma_i is exact to
    ~1e-16 * sigma_1^2 / sigma_i (relative) and to ~1e-8 * sigma_1 at worst (absolute).
    """
    rows = rows.double()
    return rows.transpose(1, 2) @ rows


def gram_svdvals(gram: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Singular values of any ``M`` with ``M^T M = gram`` (c x c, symmetric PSD)."""
    eigenvalues = torch.linalg.eigvalsh(gram).flip(0)  # ascending -> descending
    return top_k(eigenvalues.clamp_min(0).sqrt(), k, gram.shape[0])


def qr_core_svdvals(A: torch.Tensor, D: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Singular values of ``A^T D`` without forming it when ``N < min(h_in, h_out)``.

    Parameters
    ----------
    A : Tensor (N, h_in)
        Layer inputs, one row per sample (or per sample and position).
    D : Tensor (N, h_out)
        Adjoints (gradients of the loss with respect to the layer's outputs), same rows.
    k : int, optional
        Keep the ``k`` largest; all ``min(h_in, h_out)`` values when None.

    Returns
    -------
    Tensor (min(k, h_in, h_out),)
        Descending singular values; those beyond the rank ``N`` are exact zeros.
    """
    if A.ndim != 2 or D.ndim != 2 or A.shape[0] != D.shape[0]:
        raise ValueError(f"A and D must be 2-D with the same rows, got {A.shape} and {D.shape}")
    n, h_in = A.shape
    h_out = D.shape[1]
    length = min(h_in, h_out)
    if n >= length:  # the dense gradient is no larger than the core: form it
        return svdvals(A.T @ D, k)
    return core_svdvals(small_factor(A), small_factor(D), k, length)


def core_svdvals(r_a: torch.Tensor, r_d: torch.Tensor, k: int | None, length: int) -> torch.Tensor:
    """Singular values of ``A^T D`` from the (N x N) ``R`` factors of ``A^T`` and ``D^T``."""
    return top_k(torch.linalg.svdvals(r_a @ r_d.T), k, length)


@dataclass(frozen=True)
class ConvGeometry:
    """Hyper-parameters of an N-d convolution, as tuples of length ``dims``.

    ``padding`` is explicit zero padding; other padding modes are applied to the input beforehand
    (see :func:`harness.introspect.handlers.conv_input`).
    """

    dims: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1


_CONV_WEIGHT = {
    1: torch.nn.grad.conv1d_weight,
    2: torch.nn.grad.conv2d_weight,
    3: torch.nn.grad.conv3d_weight,
}


def conv_group_grad(
    x: torch.Tensor, delta: torch.Tensor, weight_shape: Sequence[int], geometry: ConvGeometry
) -> torch.Tensor:
    """Weight gradient of a convolution restricted to some samples (rows of ``x`` and ``delta``).

    Parameters
    ----------
    x : Tensor (N_g, C_in, *spatial)
        The convolution's (padded) inputs for the group's samples.
    delta : Tensor (N_g, C_out, *out_spatial)
        Gradients of the loss with respect to the convolution's outputs, same samples.
    weight_shape : sequence of int
        ``(C_out, C_in / groups, *kernel_size)``.

    Returns
    -------
    Tensor of ``weight_shape``
    """
    return _CONV_WEIGHT[geometry.dims](
        x,
        list(weight_shape),
        delta,
        stride=geometry.stride,
        padding=geometry.padding,
        dilation=geometry.dilation,
        groups=geometry.groups,
    )


def conv_grad_svdvals(
    x: torch.Tensor,
    delta: torch.Tensor,
    weight_shape: Sequence[int],
    geometry: ConvGeometry,
    k: int | None = None,
) -> torch.Tensor:
    """Singular values of the group gradient reshaped to (C_out x C_in/groups * K)."""
    grad = conv_group_grad(x, delta, weight_shape, geometry)
    return svdvals(grad.reshape(grad.shape[0], -1), k)


def unfold_patches(x: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """Input patches of an N-d convolution: (N, C_in, *spatial) -> (N, L, C_in * K).

    Row ``(n, l)`` holds the ``C_in * K`` inputs that output position ``l`` of sample ``n`` sees, in
    the weight's ``(C_in, *kernel)`` order, so ``patches^T @ delta`` is the (ungrouped) gradient.
    """
    pad = [p for p in reversed(geometry.padding) for _ in range(2)]
    x = F.pad(x, pad)
    for axis, (size, step, dil) in enumerate(
        zip(geometry.kernel_size, geometry.stride, geometry.dilation, strict=True)
    ):
        span = (size - 1) * dil + 1
        # unfold appends a window dimension at the end; keep every dil-th element of it
        x = x.unfold(2 + axis, span, step)[..., ::dil]
    # now (N, C, *out_spatial, *kernel): move out_spatial before C
    n, c = x.shape[:2]
    dims = geometry.dims
    out_axes = list(range(2, 2 + dims))
    kernel_axes = list(range(2 + dims, 2 + 2 * dims))
    x = x.permute(0, *out_axes, 1, *kernel_axes)
    positions = math.prod(x.shape[1 : 1 + dims])
    return x.reshape(n, positions, c * math.prod(geometry.kernel_size))
