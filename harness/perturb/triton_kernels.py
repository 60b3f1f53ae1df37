"""Fused Triton kernels: random numbers and perturbation in one pass over memory.

Each kernel draws its uniforms with Triton's counter-based Philox (``tl.rand(seed, offset)``,
offset = element index), so a tensor is perturbed in one read and one write, bitwise
reproducibly for a given ``(seed, counter)`` key. Semantics equal the torch fallback in
:mod:`harness.perturb.rounding`: given the uniforms a kernel drew (:func:`uniforms`), its result
is bitwise the reference function's on them.

Coverage: ``rr`` for fp32 (computed in fp32, exact as argued in
:func:`~harness.perturb.rounding.random_rounding_`); ``ud`` for fp32/fp16/bf16; ``sr`` from
fp64 to fp32 and from fp32 to fp16. Everything else, non-contiguous tensors included, uses
the torch fallback. Each entry point returns ``False``/``None`` when it does not apply.

Where the kernels run (:class:`TritonUse`): compiled, on CUDA tensors; or under Triton's CPU
interpreter, on CPU tensors, when ``TRITON_INTERPRET=1`` was set before Triton was first
imported (Triton reads it when its own ``@triton.jit`` functions, ``tl.rand`` among them, are
defined). The kernels are defined whenever Triton imports; without Triton nothing here runs.
"""

from __future__ import annotations

from enum import Enum

import torch

from harness.enums import parse_enum
from harness.errors import InputError, MissingDependencyError

try:  # pragma: no cover - Triton is optional
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover
    triton = None
    tl = None

#: Triton imports (its kernels are defined)
IMPORTED = triton is not None

_BLOCK = 1024
#: launch options of every kernel: no contraction of a*b + c into fma, so that each kernel rounds
#: exactly where its reference does (rr's ``xi = u - 1/2`` would otherwise fuse into tl.rand's
#: final product)
_OPTIONS = {"enable_fp_fusion": False}


class TritonUse(Enum):
    """Which tensors the engine sends through the fused Triton kernels.

    ``OFF``: none (torch fallback or the CPU kernels). ``CUDA``: contiguous CUDA tensors, when
    Triton imports (the default). ``INTERPRET``: CUDA tensors and contiguous CPU tensors, the
    latter through Triton's CPU interpreter, to check the kernels without a GPU (slow; needs
    ``TRITON_INTERPRET=1`` before Triton's first import).
    """

    OFF = "off"
    CUDA = "cuda"
    INTERPRET = "interpret"

    @classmethod
    def parse(cls, value: TritonUse | str | bool) -> TritonUse:
        """Return the :class:`TritonUse` named by ``value`` (``True``/``False``: cuda/off)."""
        if isinstance(value, TritonUse):
            return value
        if isinstance(value, bool):
            return cls.CUDA if value else cls.OFF
        return parse_enum(cls, value, "triton")


if IMPORTED:

    @triton.jit
    def _uniform_kernel(out_ptr, n, seed, BLOCK: tl.constexpr):
        offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        tl.store(out_ptr + offsets, tl.rand(seed, offsets.to(tl.int32)), mask=mask)

    @triton.jit
    def _rr_fp32_kernel(y_ptr, n, seed, alpha, BLOCK: tl.constexpr):
        offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        y = tl.load(y_ptr + offsets, mask=mask)
        bits = y.to(tl.int32, bitcast=True) & 0x7F800000
        bits = tl.minimum(bits, 0x7F000000)  # inf/NaN: finite scale, result stays inf/NaN
        scale = bits.to(tl.float32, bitcast=True)  # 2^(e(y)-1); 0 for zero and subnormals
        xi = tl.rand(seed, offsets.to(tl.int32)) - 0.5
        # y + 2^(1-t) xi 2^(e-1) exactly (it fits in fp64's 53 bits), then one rounding: in fp32
        # the noise of a value near the bottom of the normal range would itself be subnormal and
        # rounded first
        noise = xi.to(tl.float64) * scale.to(tl.float64) * alpha
        out = (y.to(tl.float64) + noise).to(tl.float32)
        out = tl.where(y == 0, y, out)  # -0 + (+0) would give +0
        tl.store(y_ptr + offsets, out, mask=mask)

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
        away = up ^ (bits < 0)  # sign-magnitude: +1 on the integer moves away from zero
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
        # the magnitude, rounded away from zero with probability frac (as in rounding.py);
        # division by a power of two is exact, but fp32 '/' is approximate in Triton and
        # div_rn takes fp32 only
        if wide_ptr.dtype.element_ty == tl.float64:
            scaled = tl.abs(y) / spacing
        else:
            scaled = tl.div_rn(tl.abs(y), spacing)
        lower = tl.floor(scaled)
        fraction = scaled - lower
        u = tl.rand(seed, offsets.to(tl.int32))
        magnitude = (lower + (u < fraction).to(y.dtype)) * spacing
        negative = y.to(INT, bitcast=True) < 0  # the sign bit: -0 stays -0
        rounded = tl.where(negative, -magnitude, magnitude)
        finite = (y.to(INT, bitcast=True) & EXP) != EXP
        rounded = tl.where(finite, rounded, y)
        tl.store(out_ptr + offsets, rounded.to(out_ptr.dtype.element_ty), mask=mask)

    #: the kernels run under Triton's CPU interpreter (TRITON_INTERPRET=1 at Triton's import)
    INTERPRETED = not isinstance(_rr_fp32_kernel, triton.runtime.JITFunction)
else:  # pragma: no cover
    INTERPRETED = False

#: compiled kernels can run on CUDA tensors
AVAILABLE = IMPORTED and torch.cuda.is_available()


def check_use(use: TritonUse) -> TritonUse:
    """Validate that ``use`` can be honoured in this process; return it."""
    if use is TritonUse.INTERPRET:
        if not IMPORTED:
            raise MissingDependencyError(
                "triton='interpret' needs Triton: python -m pip install 'triton==3.9.0'"
            )
        if not INTERPRETED:
            raise InputError(
                "triton='interpret' needs Triton's CPU interpreter: set TRITON_INTERPRET=1 in "
                "the environment before Triton is first imported (before importing harness)"
            )
    return use


def _runs_on(x: torch.Tensor) -> bool:
    """The kernels can take ``x`` (contiguous; CUDA, or CPU under the interpreter)."""
    if not x.is_contiguous():
        return False
    return (x.is_cuda and AVAILABLE) or (x.device.type == "cpu" and INTERPRETED)


def _grid(n: int):
    return (triton.cdiv(n, _BLOCK),)


def uniforms(n: int, seed: int, device: torch.device | str) -> torch.Tensor:
    """The fp32 uniforms every kernel draws for key ``seed``, element ``i`` at index ``i``.

    Feeding them to the functions of :mod:`harness.perturb.rounding` gives each kernel's
    result: this is how the kernels are checked against their reference definitions.
    """
    out = torch.empty(n, dtype=torch.float32, device=device)
    if not _runs_on(out):
        raise InputError(f"the Triton kernels cannot run on {out.device} in this process")
    _uniform_kernel[_grid(n)](out, n, seed, BLOCK=_BLOCK, **_OPTIONS)
    return out


def random_rounding_(y: torch.Tensor, t: int, seed: int) -> bool:
    """Fused in-place random rounding of a contiguous fp32 tensor; False if unsupported."""
    if not (IMPORTED and y.dtype == torch.float32 and _runs_on(y)):
        return False
    n = y.numel()
    _rr_fp32_kernel[_grid(n)](y, n, seed, 2.0 ** (1 - t), BLOCK=_BLOCK, **_OPTIONS)
    return True


_UD_LAYOUT = {
    torch.float32: (torch.int32, 0x7FFFFFFF, 0x7F800000),
    torch.float16: (torch.int16, 0x7FFF, 0x7C00),
    torch.bfloat16: (torch.int16, 0x7FFF, 0x7F80),
}


def up_down_(y: torch.Tensor, seed: int) -> bool:
    """Fused in-place up-down rounding of a contiguous tensor; False if unsupported."""
    if not (IMPORTED and y.dtype in _UD_LAYOUT and _runs_on(y)):
        return False
    int_dtype, magnitude, inf = _UD_LAYOUT[y.dtype]
    bits = y.view(int_dtype)
    int_tl = tl.int32 if int_dtype == torch.int32 else tl.int16
    n = y.numel()
    _ud_kernel[_grid(n)](
        bits, n, seed, MAG=magnitude, INF=inf, INT=int_tl, BLOCK=_BLOCK, **_OPTIONS
    )
    return True


# (wide, target): exponent mask, largest power of two and the target's subnormal spacing, all as
# bit patterns of the wide type (fp64 2^-149 = 874 << 52; fp32 2^-24 = 103 << 23). fp32 -> bf16
# is left to the torch fallback: bf16's spacing 2^-133 is subnormal in fp32.
_SR_PAIRS = {
    (torch.float64, torch.float32): (0x7FF0000000000000, 0x7FE0000000000000, 874 << 52, "int64"),
    (torch.float32, torch.float16): (0x7F800000, 0x7F000000, 103 << 23, "int32"),
}

#: (wide, target) dtype pairs the fused stochastic rounding handles
SR_PAIRS = tuple(_SR_PAIRS)


def stochastic_rounding(
    wide: torch.Tensor, dtype: torch.dtype, t: int, seed: int
) -> torch.Tensor | None:
    """Fused stochastic rounding of a contiguous tensor into a new ``dtype`` tensor."""
    key = (wide.dtype, dtype)
    if not (IMPORTED and key in _SR_PAIRS and _runs_on(wide)):
        return None
    exp_mask, top, tiny_bits, int_name = _SR_PAIRS[key]
    out = torch.empty_like(wide, dtype=dtype)
    n = wide.numel()
    _sr_kernel[_grid(n)](
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
        **_OPTIONS,
    )
    return out
