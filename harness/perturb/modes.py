"""Arithmetic modes, significand widths and virtual-precision resolution.

Notation (docs/design.md, "Arithmetic modes"): ``p`` is the number of significand bits of a floating-point type
(implicit bit included): fp64 53, fp32 24, fp16 11, bf16 8. ``t`` is the virtual precision,
``1 <= t <= p``.
"""

from __future__ import annotations

from enum import Enum

import torch

from harness.enums import parse_enum
from harness.errors import InputError

#: significand bits ``p`` (implicit leading bit included) of each supported float dtype.
SIGNIFICAND_BITS: dict[torch.dtype, int] = {
    torch.float64: 53,
    torch.float32: 24,
    torch.float16: 11,
    torch.bfloat16: 8,
}

#: the type an operation is recomputed in for stochastic rounding (fp64 has none).
WIDER: dict[torch.dtype, torch.dtype] = {
    torch.float32: torch.float64,
    torch.float16: torch.float32,
    torch.bfloat16: torch.float32,
}

_DTYPE_NAMES = {
    "float64": torch.float64,
    "double": torch.float64,
    "fp64": torch.float64,
    "float32": torch.float32,
    "float": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "half": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


class Mode(Enum):
    """Arithmetic applied to each floating-point operation result.

    ``IEEE`` leaves results untouched; ``RR`` is MCA random rounding (outbound perturbation);
    ``SR`` stochastic rounding; ``UD`` up-down rounding (one ulp up or down, p = 1/2).
    """

    IEEE = "ieee"
    RR = "rr"
    SR = "sr"
    UD = "ud"

    @classmethod
    def parse(cls, value: Mode | str) -> Mode:
        """Return the :class:`Mode` named by ``value`` (case-insensitive string or Mode).

        Raises
        ------
        InputError
            If ``value`` names no mode.
        """
        return parse_enum(cls, value, "mode")


def parse_dtype(value: torch.dtype | str) -> torch.dtype:
    """Return the supported float dtype named by ``value`` (a ``torch.dtype`` or a name)."""
    if isinstance(value, torch.dtype) and value in SIGNIFICAND_BITS:
        return value
    if isinstance(value, str) and value.lower().removeprefix("torch.") in _DTYPE_NAMES:
        return _DTYPE_NAMES[value.lower().removeprefix("torch.")]
    raise InputError(
        f"precision keys must be one of {[str(d) for d in SIGNIFICAND_BITS]}, got {value!r}"
    )


def _check_bits(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def resolve_precision(
    precision: int | dict[torch.dtype | str, int] | None,
) -> dict[torch.dtype, int]:
    """Turn the user's ``precision`` into a virtual precision ``t`` per float dtype.

    Parameters
    ----------
    precision : None, int or dict
        ``None``: ``t = p`` for every dtype. An int: that ``t`` for every dtype, capped at the
        dtype's own ``p``. A dict ``{dtype: t}``: those values (each ``1 <= t <= p``), ``t = p``
        for dtypes it does not name.

    Returns
    -------
    dict
        ``{dtype: t}`` for every dtype of :data:`SIGNIFICAND_BITS`.
    """
    resolved = dict(SIGNIFICAND_BITS)
    if precision is None:
        return resolved
    if isinstance(precision, dict):
        for key, bits in precision.items():
            dtype = parse_dtype(key)
            _check_bits(f"precision[{dtype}]", bits)
            if bits > SIGNIFICAND_BITS[dtype]:
                raise InputError(
                    f"precision[{dtype}] must be <= {SIGNIFICAND_BITS[dtype]} "
                    f"(the significand bits of {dtype}), got {bits}"
                )
            resolved[dtype] = bits
        return resolved
    bits = _check_bits("precision", precision)
    return {dtype: min(bits, p) for dtype, p in SIGNIFICAND_BITS.items()}
