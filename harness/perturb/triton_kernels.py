"""Fused CUDA kernels (Triton): random numbers and perturbation in one pass over memory.

Each kernel draws its uniforms with Triton's counter-based Philox (``tl.rand(seed, offset)``,
offset = element index), so a tensor is perturbed in one read and one write, bitwise
reproducibly for a given ``(seed, counter)`` key. Semantics equal the torch fallback in
:mod:`harness.perturb.rounding` (same formulas; different random numbers).

Coverage: ``rr`` for fp32 (computed in fp32, exact as argued in
:func:`~harness.perturb.rounding.random_rounding_`); ``ud`` for fp32/fp16/bf16; ``sr`` from
fp64 to fp32 and from fp32 to fp16. Everything else, non-contiguous tensors included, uses
the torch fallback. Each entry point returns ``False``/``None`` when it does not apply.

Triton is optional: without it (CPU machines) :data:`AVAILABLE` is False and nothing here runs.
These kernels were written without a GPU at hand; ``tests/test_perturb_cuda.py`` checks them
against the fallback on a CUDA machine.
"""

from __future__ import annotations

import torch

try:  # pragma: no cover - Triton is absent on CPU-only installs
    import triton
    import triton.language as tl

    AVAILABLE = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    triton = None
    tl = None
    AVAILABLE = False

_BLOCK = 1024

if AVAILABLE:  # pragma: no cover - needs CUDA

    @triton.jit
    def _rr_fp32_kernel(y_ptr, n, seed, alpha, BLOCK: tl.constexpr):
        offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        y = tl.load(y_ptr + offsets, mask=mask)
        bits = y.to(tl.int32, bitcast=True) & 0x7F800000
        bits = tl.minimum(bits, 0x7F000000)  # inf/NaN: finite scale, result stays inf/NaN
        scale = bits.to(tl.float32, bitcast=True)  # 2^(e(y)-1); 0 for zero and subnormals
        xi = tl.rand(seed, offsets.to(tl.int32)) - 0.5
        tl.store(y_ptr + offsets, y + (xi * scale) * alpha, mask=mask)

    @triton.jit
    def _ud_kernel(
        y_ptr, n, seed, MAG: tl.constexpr, INF: tl.constexpr, INT: tl.constexpr, BLOCK: tl.constexpr
    ):
        offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        bits = tl.load(y_ptr + offsets, mask=mask)
        magnitude = bits & MAG
        movable = (magnitude != 0) & (magnitude < INF)
        up = tl.rand(seed, offsets.to(tl.int32)) < 0.5
        away = up ^ (bits < 0)
        step = tl.where(away, 1, -1)
        step = tl.where(movable, step, 0).to(INT)
        tl.store(y_ptr + offsets, bits + step, mask=mask)

    @triton.jit
    def _sr_kernel(
        wide_ptr,
        out_ptr,
        n,
        seed,
        alpha,
        TINY: tl.constexpr,
        EXP: tl.constexpr,
        TOP: tl.constexpr,
        INT: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        y = tl.load(wide_ptr + offsets, mask=mask)
        bits = y.to(INT, bitcast=True) & EXP
        bits = tl.minimum(bits, TOP)
        spacing = bits.to(y.dtype, bitcast=True) * alpha
        tiny = tl.full((BLOCK,), TINY, INT).to(y.dtype, bitcast=True)
        spacing = tl.maximum(spacing, tiny)
        # the magnitude, rounded away from zero with probability frac (as in rounding.py)
        scaled = tl.div_rn(tl.abs(y), spacing)  # exact: a power of two ('/' is approximate)
        lower = tl.floor(scaled)
        fraction = scaled - lower
        u = tl.rand(seed, offsets.to(tl.int32))
        magnitude = (lower + (u < fraction).to(y.dtype)) * spacing
        negative = y.to(INT, bitcast=True) < 0  # the sign bit: -0 stays -0
        rounded = tl.where(negative, -magnitude, magnitude)
        finite = (y.to(INT, bitcast=True) & EXP) != EXP
        rounded = tl.where(finite, rounded, y)
        tl.store(out_ptr + offsets, rounded.to(out_ptr.dtype.element_ty), mask=mask)


def _grid(n: int):
    return (triton.cdiv(n, _BLOCK),)


def random_rounding_(y: torch.Tensor, t: int, seed: int) -> bool:
    """Fused in-place random rounding of a contiguous CUDA fp32 tensor; False if unsupported."""
    if not (AVAILABLE and y.is_cuda and y.is_contiguous() and y.dtype == torch.float32):
        return False
    n = y.numel()  # pragma: no cover - needs CUDA
    _rr_fp32_kernel[_grid(n)](y, n, seed, 2.0 ** (1 - t), BLOCK=_BLOCK)  # pragma: no cover
    return True  # pragma: no cover


_UD_LAYOUT = {
    torch.float32: (torch.int32, 0x7FFFFFFF, 0x7F800000),
    torch.float16: (torch.int16, 0x7FFF, 0x7C00),
    torch.bfloat16: (torch.int16, 0x7FFF, 0x7F80),
}


def up_down_(y: torch.Tensor, seed: int) -> bool:
    """Fused in-place up-down rounding of a contiguous CUDA tensor; False if unsupported."""
    if not (AVAILABLE and y.is_cuda and y.is_contiguous() and y.dtype in _UD_LAYOUT):
        return False
    int_dtype, magnitude, inf = _UD_LAYOUT[y.dtype]  # pragma: no cover - needs CUDA
    bits = y.view(int_dtype)  # pragma: no cover
    int_tl = tl.int32 if int_dtype == torch.int32 else tl.int16  # pragma: no cover
    n = y.numel()  # pragma: no cover
    _ud_kernel[_grid(n)](
        bits, n, seed, MAG=magnitude, INF=inf, INT=int_tl, BLOCK=_BLOCK
    )  # pragma: no cover
    return True  # pragma: no cover


# (wide, target): exponent mask, largest power of two and the target's subnormal spacing, all as
# bit patterns of the wide type (fp64 2^-149 = 874 << 52; fp32 2^-24 = 103 << 23). fp32 -> bf16
# is left to the torch fallback: bf16's spacing 2^-133 is subnormal in fp32.
_SR_PAIRS = {
    (torch.float64, torch.float32): (0x7FF0000000000000, 0x7FE0000000000000, 874 << 52, "int64"),
    (torch.float32, torch.float16): (0x7F800000, 0x7F000000, 103 << 23, "int32"),
}


def stochastic_rounding(
    wide: torch.Tensor, dtype: torch.dtype, t: int, seed: int
) -> torch.Tensor | None:
    """Fused stochastic rounding of a contiguous CUDA tensor into a new ``dtype`` tensor."""
    key = (wide.dtype, dtype)
    if not (AVAILABLE and wide.is_cuda and wide.is_contiguous() and key in _SR_PAIRS):
        return None
    exp_mask, top, tiny_bits, int_name = _SR_PAIRS[key]  # pragma: no cover - needs CUDA

    out = torch.empty_like(wide, dtype=dtype)  # pragma: no cover
    n = wide.numel()  # pragma: no cover
    _sr_kernel[_grid(n)](  # pragma: no cover
        wide,
        out,
        n,
        seed,
        2.0 ** (1 - t),
        TINY=tiny_bits,
        EXP=exp_mask,
        TOP=top,
        INT=getattr(tl, int_name),
        BLOCK=_BLOCK,
    )
    return out  # pragma: no cover
