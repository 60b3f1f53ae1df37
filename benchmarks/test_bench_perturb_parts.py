"""The parts of a perturbed CPU step: rounding kernels per element, and fp64 convolutions.

Run: ``python -m pytest benchmarks/test_bench_perturb_parts.py --benchmark-json OUT.json``.

- ``test_bench_rounding``: one fp32 tensor of 2x64x64x64 (what a FastSurfer-like 5x5 conv
  writes) rounded under rr / sr / ud by the fused C++ kernel (``native``) and by the torch/numpy
  fallback, in place (rr, ud; sr at t = 22) or from an fp64 result (``*-from-fp64``, t = 24).
  ``extra_info`` has the nanoseconds per element.
- ``test_bench_fp64_conv``: the 5x5, 64->64 convolution of that tensor in fp64, forward and
  backward, by ATen (``slow_conv2d``) and by :mod:`harness.perturb.wide_ops`, with the fp32
  oneDNN convolution for reference. ``extra_info`` has the ratio to the fp32 time.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.fingerprint import fingerprint
from harness.perturb import native, rounding, wide_ops
from harness.perturb.rng import KeyedStreams

SHAPE = (2, 64, 64, 64)
KERNEL = (64, 64, 5, 5)
_FP32_MIN: dict[str, float] = {}


def _data(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return torch.randn(SHAPE, generator=g).to(dtype), torch.randn(KERNEL, generator=g).to(dtype)


def _native_call(kind: str, x: torch.Tensor, wide: torch.Tensor, key: int):
    ext = native.load()
    if kind.endswith("from-fp64"):
        code = native.KIND[kind.split("-")[0]]
        return lambda: ext.round_from_wide(wide, torch.float32, code, 24, key)
    t = 22 if kind == "sr" else 24
    return lambda: ext.perturb_(x.clone(), native.KIND[kind], t, key)


def _fallback_call(kind: str, x: torch.Tensor, wide: torch.Tensor, streams: KeyedStreams):
    if kind == "rr":
        return lambda: rounding.random_rounding_(x.clone(), 24, streams.centred_uniform(x, 1))
    if kind == "ud":
        return lambda: rounding.up_down_(x.clone(), streams.bits(x, 1))
    if kind == "sr":
        return lambda: rounding.stochastic_rounding(x, torch.float32, 22, streams.uniform(x, 1))
    if kind == "sr-from-fp64":
        return lambda: rounding.stochastic_rounding(
            wide, torch.float32, 24, streams.uniform(wide, 1)
        )

    def rr_from_fp64():
        y = wide.clone()
        rounding.random_rounding_(y, 24, streams.centred_uniform(y, 1))
        return y.to(torch.float32)

    return rr_from_fp64


@pytest.mark.parametrize("kind", ["rr", "sr", "ud", "rr-from-fp64", "sr-from-fp64"])
@pytest.mark.parametrize("path", ["native", "fallback"])
def test_bench_rounding(benchmark, kind, path):
    x, _ = _data()
    wide = x.double() * (1 + 2.0**-30)  # values between fp32 neighbours
    streams = KeyedStreams(0)
    if path == "native":
        call = _native_call(kind, x, wide, streams.kernel_seed(1))
    else:
        call = _fallback_call(kind, x, wide, streams)
    benchmark.pedantic(call, rounds=20, iterations=1, warmup_rounds=2)
    benchmark.extra_info.update(
        {
            "kind": kind,
            "path": path,
            "shape": list(SHAPE),
            "threads": torch.get_num_threads(),
            "ns_per_element": benchmark.stats.stats.min / x.numel() * 1e9,
            "fingerprint": fingerprint(),
        }
    )


def _conv_call(impl: str, direction: str):
    dtype = torch.float32 if impl == "aten-fp32" else torch.float64
    x, w = _data(dtype)
    y = F.conv2d(x, w, padding=2)
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    backward_args = (grad, x, w, [64], [1, 1], [2, 2], [1, 1], False, [0, 0], 1, [True, True, True])
    if impl == "harness-fp64":
        if direction == "forward":
            return lambda: wide_ops.conv2d(x, w, None, (1, 1), (2, 2))
        return lambda: wide_ops.convolution_backward(*backward_args)
    if direction == "forward":
        return lambda: F.conv2d(x, w, padding=2)
    return lambda: torch.ops.aten.convolution_backward(*backward_args)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("impl", ["aten-fp32", "aten-fp64", "harness-fp64"])
def test_bench_fp64_conv(benchmark, impl, direction):
    call = _conv_call(impl, direction)
    benchmark.pedantic(call, rounds=10, iterations=1, warmup_rounds=1)
    best = benchmark.stats.stats.min
    if impl == "aten-fp32":
        _FP32_MIN[direction] = best
    benchmark.extra_info.update(
        {
            "impl": impl,
            "direction": direction,
            "shape": list(SHAPE),
            "kernel": list(KERNEL),
            "threads": torch.get_num_threads(),
            "ratio_vs_fp32": best / _FP32_MIN[direction] if direction in _FP32_MIN else None,
            "fingerprint": fingerprint(),
        }
    )
