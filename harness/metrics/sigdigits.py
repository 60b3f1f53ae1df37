"""Significant digits of Monte Carlo samples through the ``significantdigits`` package.

Sohier et al., "Confidence intervals for stochastic arithmetic", ACM TOMS 47(2), 2021. With samples
``X_i`` (M of them) and a reference ``Y`` the error is ``Z_i = X_i / Y - 1`` (relative) or
``Z_i = X_i - Y`` (absolute, rescaled by ``2^(floor(log2|Y|)+1)``). The CNH estimate is

    s = -log2(std(Z)) - [ 1/2 log2((M-1) / chi2_{1-a/2}(M-1)) + log2(Phi^-1((p+1)/2)) ]

bits that are significant with probability ``p`` at confidence ``1-a``; the General method is the
largest ``k`` with ``|Z_i| <= 2^-k`` for every sample (``p``/``confidence`` fix the sample count it
needs). Decimal digits are bits times ``log10(2)``.

Pitfall handled here: ``significantdigits`` 0.6.0 returns NaN when ``reference`` is ``None`` or has
the samples' shape; this wrapper always passes a reference with the shape of one sample (the sample
mean when none is given) and rejects a reference with the samples' shape.
"""

from __future__ import annotations

import enum
import warnings

import numpy as np

from harness.enums import parse_enum
from harness.errors import InputError


class ErrorKind(enum.Enum):
    RELATIVE = "relative"
    ABSOLUTE = "absolute"


class SigMethod(enum.Enum):
    CNH = "cnh"
    GENERAL = "general"


def _as_float64(name: str, value) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor, on any device
        value = value.detach().to("cpu").double().numpy()
    array = np.asarray(value, dtype=np.float64)
    return array


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise InputError(f"{name} must be in (0, 1), got {value!r}")


def significant_digits(
    samples,
    reference=None,
    *,
    basis: int = 2,
    error: str | ErrorKind = ErrorKind.RELATIVE,
    method: str | SigMethod = SigMethod.CNH,
    probability: float = 0.95,
    confidence: float = 0.95,
) -> np.ndarray:
    """Significant digits of each element over the first axis of ``samples``.

    Parameters
    ----------
    samples : array-like or torch.Tensor, shape (M, ...)
        ``M >= 2`` samples of the same quantity (e.g. one per perturbed run).
    reference : array-like, shape (...), scalar, or None
        The value errors are measured against: typically the IEEE run's output. ``None`` uses the
        sample mean.
    basis : {2, 10}
        2 for significant bits, 10 for decimal digits.
    error : {"relative", "absolute"}
    method : {"cnh", "general"}
    probability, confidence : float in (0, 1)

    Returns
    -------
    numpy.ndarray, shape (...)
        Significant digits per element. Relative error is undefined where the reference is zero:
        those elements are NaN.
    """
    import significantdigits as sd

    error = parse_enum(ErrorKind, error, "error")
    method = parse_enum(SigMethod, method, "method")
    if basis not in (2, 10):
        raise InputError(f"basis must be 2 or 10, got {basis!r}")
    _check_probability("probability", probability)
    _check_probability("confidence", confidence)

    x = _as_float64("samples", samples)
    if x.ndim < 1 or x.shape[0] < 2:
        raise InputError(f"samples must have shape (M, ...) with M >= 2, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("samples contain NaN or Inf; significant digits are undefined")
    ref = x.mean(axis=0) if reference is None else _as_float64("reference", reference)
    if ref.ndim != 0 and ref.shape != x.shape[1:]:
        raise InputError(
            f"reference must be a scalar or have the shape of one sample {x.shape[1:]}, "
            f"got shape {ref.shape}"
        )
    sd_error = sd.Error.Relative if error is ErrorKind.RELATIVE else sd.Error.Absolute
    sd_method = sd.Method.CNH if method is SigMethod.CNH else sd.Method.General
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        result = sd.significant_digits(
            x,
            reference=ref,
            axis=0,
            basis=basis,
            error=sd_error,
            method=sd_method,
            probability=probability,
            confidence=confidence,
        )
    result = np.asarray(result, dtype=np.float64)
    if error is ErrorKind.RELATIVE:
        result = np.where(np.broadcast_to(ref, result.shape) == 0, np.nan, result)
    return result


def significant_bits(samples, reference=None, **kwargs) -> np.ndarray:
    """:func:`significant_digits` in basis 2."""
    return significant_digits(samples, reference, basis=2, **kwargs)


def summarize(values) -> dict[str, float]:
    """Min, mean, median and max over the finite entries of a significant-digit array."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {
            "min": float("nan"),
            "mean": float("nan"),
            "median": float("nan"),
            "max": float("nan"),
            "count": 0,
        }
    return {
        "min": float(v.min()),
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "max": float(v.max()),
        "count": int(v.size),
    }
