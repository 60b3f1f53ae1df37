"""Stochastic arithmetic for PyTorch (CPU and CUDA) and seed plans.

>>> from harness.perturb import StochasticArithmetic, Mode
>>> with StochasticArithmetic(mode="sr", seed=0):  # doctest: +SKIP
...     loss = model(x).sum(); loss.backward(); opt.step()
"""

from harness.perturb.engine import StochasticArithmetic
from harness.perturb.modes import SIGNIFICAND_BITS, Mode, resolve_precision
from harness.perturb.registry import REGISTRY, Policy
from harness.perturb.triton_kernels import TritonUse

__all__ = [
    "REGISTRY",
    "SIGNIFICAND_BITS",
    "Mode",
    "Policy",
    "StochasticArithmetic",
    "TritonUse",
    "resolve_precision",
]
