"""Pure rounding functions of stochastic arithmetic (tensor in, tensor out).

Random numbers are passed in, so every function is deterministic and can be checked against an
fp64/numpy brute force. Notation (docs/design.md, "Arithmetic modes"): ``y`` a working-precision result with ``p``
significand bits, ``t`` the virtual precision, ``e(y)`` the exponent with ``y = m 2^e(y)``,
``0.5 <= |m| < 1``.

The exponent is read with a bit mask (``bits & exponent_mask`` reinterpreted as a float is
``2^(e(y) - 1)``) instead of ``frexp``/``ldexp`` chains: one integer pass instead of several.
Subnormal inputs have an all-zero exponent field and are therefore left unchanged by
:func:`random_rounding` (documented limit).

References: Parker, *Monte Carlo Arithmetic* (1997) for random rounding; Connolly, Higham and
Mary, *Stochastic rounding and its probabilistic backward error analysis* (SISC 2021) for
stochastic rounding; Verificarlo/PRISM for up-down rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.perturb.modes import SIGNIFICAND_BITS


@dataclass(frozen=True)
class BitLayout:
    """Integer view of a float dtype: masks of its IEEE-754 encoding."""

    int_dtype: torch.dtype
    exponent_mask: int  # all exponent bits set (= +inf)
    largest_power_bits: int  # bits of the largest finite power of two
    magnitude_mask: int  # every bit except the sign


BIT_LAYOUTS: dict[torch.dtype, BitLayout] = {
    torch.float64: BitLayout(torch.int64, 0x7FF0000000000000, 0x7FE0000000000000, (1 << 63) - 1),
    torch.float32: BitLayout(torch.int32, 0x7F800000, 0x7F000000, 0x7FFFFFFF),
    torch.float16: BitLayout(torch.int16, 0x7C00, 0x7800, 0x7FFF),
    torch.bfloat16: BitLayout(torch.int16, 0x7F80, 0x7F00, 0x7FFF),
}


def smallest_spacing(dtype: torch.dtype) -> float:
    """Return the spacing of ``dtype``'s subnormals, ``2^(emin + 1 - p)`` (fp32: ``2^-149``)."""
    info = torch.finfo(dtype)
    return info.smallest_normal * info.eps


def exponent_scale(y: torch.Tensor) -> torch.Tensor:
    """Return ``2^(e(y) - 1)`` elementwise, in ``y``'s dtype.

    Zero and subnormals give 0; inf and NaN give the largest finite power of two (so that
    adding a scaled noise to them leaves them inf/NaN instead of producing ``inf - inf``).
    """
    layout = BIT_LAYOUTS[y.dtype]
    bits = y.view(layout.int_dtype) & layout.exponent_mask
    return bits.clamp_(max=layout.largest_power_bits).view(y.dtype)


def random_rounding_(y: torch.Tensor, t: int, xi: torch.Tensor) -> torch.Tensor:
    """In place: ``y <- fl(y + 2^(e(y) - t) xi)``, ``xi`` in ``[-1/2, 1/2)``; zeros keep their sign.

    fp32 with fp32 ``xi`` (24-bit uniforms) is computed in fp32: the exact sum then fits in
    48 bits, so fp64 evaluation followed by round-to-nearest gives the same bits as one fp32
    addition. Other dtype combinations are evaluated in fp64 and rounded to nearest.
    """
    negative_zero = (y == 0) & torch.signbit(y)  # -0 + (+0) would give +0
    if xi.dtype == y.dtype and y.dtype in (torch.float32, torch.float64):
        # one pass: y + (2^(1-t) xi) 2^(e-1); every product is exact (powers of two)
        y.addcmul_(xi, exponent_scale(y), value=2.0 ** (1 - t))
    else:
        noise = xi.to(torch.float64).mul_(exponent_scale(y).to(torch.float64))
        y.copy_(y.to(torch.float64).add_(noise, alpha=2.0 ** (1 - t)))
    return y.masked_fill_(negative_zero, -0.0)


def random_rounding(y: torch.Tensor, t: int, uniform: torch.Tensor) -> torch.Tensor:
    """MCA random rounding (outbound perturbation) of a working-precision result.

    ``y' = fl(y + 2^(e(y) - t) xi)`` with ``xi = uniform - 1/2 ~ U(-1/2, 1/2)``, computed exactly
    and rounded to nearest into ``y``'s dtype. Zero, inf and NaN are unchanged.

    Parameters
    ----------
    y : Tensor
        Working-precision values (fp64, fp32, fp16 or bf16).
    t : int
        Virtual precision, ``1 <= t <= p``.
    uniform : Tensor
        ``U[0, 1)`` samples, same shape as ``y``.

    Notes
    -----
    ``|2^(e(y) - t) xi| < 2^(e(y) - t - 1)``, half an ulp when ``t = p``: applied to an already
    rounded result at ``t = p``, random rounding changes only values at a power of two (whose
    lower neighbour is half an ulp away). Use ``t < p`` for a visible perturbation.
    """
    xi = uniform.to(torch.float32 if y.dtype == torch.float32 else torch.float64) - 0.5
    return random_rounding_(y.clone(), t, xi)


def stochastic_rounding(
    y_wide: torch.Tensor, dtype: torch.dtype, t: int, uniform: torch.Tensor
) -> torch.Tensor:
    """Round ``y_wide`` stochastically to ``t`` significand bits of ``dtype``.

    With ``lo <= |y| <= hi`` the neighbouring ``t``-bit magnitudes, the result is ``hi`` (with
    ``y``'s sign) with probability ``(|y| - lo) / (hi - lo)`` (exactly: when
    ``uniform < (|y| - lo) / (hi - lo)``), else ``lo``: the same distribution as rounding the
    signed value up with probability ``(y - lo) / (hi - lo)``. Unbiased; values already on the ``t``-bit grid stay exact. The grid spacing is
    ``2^(e(y) - t)``, never finer than ``dtype``'s subnormal spacing. Values beyond ``dtype``'s
    range round to inf; inf and NaN pass through.

    Parameters
    ----------
    y_wide : Tensor
        Values in a type at least as wide as ``dtype`` (fp64 for fp32, fp32 for fp16/bf16).
    dtype : torch.dtype
        Target dtype.
    t : int
        Virtual precision, ``1 <= t <= p(dtype)``.
    uniform : Tensor
        ``U[0, 1)`` samples, same shape as ``y_wide``.
    """
    if SIGNIFICAND_BITS[y_wide.dtype] < SIGNIFICAND_BITS[dtype]:
        raise ValueError(f"y_wide ({y_wide.dtype}) must be at least as wide as {dtype}")
    spacing = exponent_scale(y_wide).mul_(2.0 ** (1 - t))
    spacing.clamp_(min=smallest_spacing(dtype))
    scaled = y_wide.abs().div_(spacing)  # exact: division by a power of two
    lower = torch.floor(scaled)
    scaled.sub_(lower)  # fraction (|y| - lo) / (hi - lo), exact
    lower.add_(uniform < scaled).mul_(spacing)
    rounded = torch.where(torch.isfinite(y_wide), lower.copysign_(y_wide), y_wide)
    return rounded.to(dtype)


def up_down_(y: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """In place: move each finite non-zero ``y`` one ulp toward +inf where ``up`` else -inf."""
    layout = BIT_LAYOUTS[y.dtype]
    bits = y.view(layout.int_dtype)
    magnitude = bits & layout.magnitude_mask
    movable = (magnitude != 0) & (magnitude < layout.exponent_mask)
    # in sign-magnitude encoding +1 on the integer moves away from zero
    away_from_zero = up ^ (bits < 0)
    step = away_from_zero.to(layout.int_dtype).mul_(2).sub_(1).mul_(movable)
    bits.add_(step)
    return y


def up_down(y: torch.Tensor, bit: torch.Tensor) -> torch.Tensor:
    """Up-down rounding (PRISM UD): ``nextafter(y, +inf)`` where ``bit`` else ``nextafter(y, -inf)``.

    Zero, inf and NaN are unchanged; every other value moves exactly one ulp (of ``y``'s dtype),
    exact results included. Draw ``bit`` with probability 1/2.

    Parameters
    ----------
    y : Tensor
        Working-precision values.
    bit : Tensor
        Boolean tensor of ``y``'s shape, True for toward +inf.
    """
    return up_down_(y.clone(), bit.to(torch.bool))
