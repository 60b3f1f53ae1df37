"""Instrumented conv2d / batchnorm2d kernels (C for CPU, CUDA for GPU) and their torch wrappers.

Kernel-level stochastic arithmetic: every floating-point add/mul/fma/div inside conv2d and
batchnorm2d (forward and backward) is rounded by the mode compiled into the kernels (``ieee``,
``sr`` stochastic rounding via error-free transformations, ``rr`` MCA random rounding). Sources live
in the repository's ``kernels/`` folder (installed as ``harness/kernels/csrc``) and are built just in
time by :func:`load_extension`.

>>> from harness.kernels import instrument_model, reseed
>>> model = instrument_model(model, mode="sr", seed=1)   # deep copy with instrumented layers
>>> reseed(model, 2)                                        # new random streams
"""

from harness.enums import OnUnknown
from harness.kernels.build import BuildVariant, KernelMode, load_extension, parse_mode
from harness.kernels.functional import KernelStream, batch_norm2d, conv2d
from harness.kernels.instrument import (
    instrument_model,
    instrumented_layers,
    layer_seed,
    reseed,
)
from harness.kernels.modules import InstrumentedBatchNorm2d, InstrumentedConv2d

__all__ = [
    "BuildVariant",
    "InstrumentedBatchNorm2d",
    "InstrumentedConv2d",
    "KernelMode",
    "KernelStream",
    "OnUnknown",
    "batch_norm2d",
    "conv2d",
    "instrument_model",
    "instrumented_layers",
    "layer_seed",
    "load_extension",
    "parse_mode",
    "reseed",
]
