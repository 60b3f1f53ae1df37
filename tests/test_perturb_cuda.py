"""CUDA paths: fused Triton kernels against the torch fallback, determinism, training step.

Marked ``cuda``: skipped, with the reason, without a CUDA device.
"""

from __future__ import annotations

import pytest
import torch
from harness.perturb import StochasticArithmetic, triton_kernels
from harness.perturb.rng import KeyedStreams
from harness.perturb.rounding import random_rounding_, stochastic_rounding, up_down_

pytestmark = pytest.mark.cuda
requires_triton = pytest.mark.skipif(not triton_kernels.AVAILABLE, reason="needs Triton")


def _values(n, dtype=torch.float32):
    g = torch.Generator(device="cuda").manual_seed(0)
    return (torch.randn(n, device="cuda", generator=g) * 100).to(dtype)


@requires_triton
@pytest.mark.parametrize("t", [24, 12, 6])
def test_fused_rr_matches_fallback_statistically(t):
    y = _values(1 << 20)
    fused = y.clone()
    assert triton_kernels.random_rounding_(fused, t, seed=123)
    again = y.clone()
    triton_kernels.random_rounding_(again, t, seed=123)
    assert torch.equal(fused, again)
    fallback = random_rounding_(y.clone(), t, KeyedStreams(1).centred_uniform(y, 0))
    rel_fused = ((fused.double() - y.double()) / y.double()).abs()
    rel_fallback = ((fallback.double() - y.double()) / y.double()).abs()
    assert rel_fused.max() <= 2.0 ** -(t - 1)
    # same distribution of the relative perturbation: means agree within 2% (n = 2^20)
    if t < 24:
        ratio = rel_fused.mean() / rel_fallback.mean()
        assert 0.98 < ratio.item() < 1.02


@requires_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_fused_ud_moves_one_ulp_half_up(dtype):
    y = _values(1 << 18, dtype)
    y[:4] = torch.tensor([0.0, float("inf"), float("-inf"), float("nan")], dtype=dtype)
    fused = y.clone()
    assert triton_kernels.up_down_(fused, seed=7)
    fallback = up_down_(y.clone(), KeyedStreams(7).bits(y, 0))
    int_dtype = torch.int32 if dtype == torch.float32 else torch.int16
    for moved in (fused, fallback):
        step = moved.view(int_dtype).long() - y.view(int_dtype).long()
        assert torch.all(step[4:].abs() == 1) and torch.all(step[:3] == 0)
        up_share = (moved[4:] > y[4:]).double().mean().item()
        assert abs(up_share - 0.5) < 0.01


@requires_triton
@pytest.mark.parametrize(
    ("wide", "dtype"), [(torch.float64, torch.float32), (torch.float32, torch.float16)]
)
def test_fused_sr_unbiased_and_deterministic(wide, dtype):
    x = torch.full((1 << 20,), 1.0 / 3.0, device="cuda", dtype=wide)
    fused = triton_kernels.stochastic_rounding(x, dtype, 11 if dtype == torch.float16 else 24, 5)
    assert torch.equal(
        fused, triton_kernels.stochastic_rounding(x, dtype, 11 if dtype == torch.float16 else 24, 5)
    )
    fallback = stochastic_rounding(
        x, dtype, 11 if dtype == torch.float16 else 24, torch.rand(x.shape, device="cuda")
    )
    assert set(fused.unique().tolist()) == set(fallback.unique().tolist())
    lo, hi = fused.unique().double()
    sd = (hi - lo) * 0.5 / (x.numel() ** 0.5)
    assert abs(fused.double().mean() - x[0]) < 6 * sd
    exact = x.to(dtype).to(wide)
    assert torch.equal(
        triton_kernels.stochastic_rounding(exact, dtype, 24 if dtype == torch.float32 else 11, 1),
        exact.to(dtype),
    )


@pytest.mark.parametrize("mode", ["ieee", "rr", "sr", "ud"])
def test_training_step_cuda(mode):
    from test_perturb_engine import training_step

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    plain = training_step(None, 0, "cuda")
    first = training_step(mode, 0, "cuda")
    again = training_step(mode, 0, "cuda")
    other = training_step(mode, 1, "cuda")
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    if mode == "ieee":
        assert all(torch.equal(a, b) for a, b in zip(first, plain, strict=True))
    else:
        assert not torch.equal(first[0], other[0])
        torch.testing.assert_close(first[0], plain[0], atol=5e-3, rtol=0)


def test_global_cuda_rng_untouched():
    x = torch.randn(256, 256, device="cuda")
    torch.cuda.manual_seed(3)
    state = torch.cuda.get_rng_state()
    for mode in ("rr", "sr", "ud"):
        with StochasticArithmetic(mode, seed=1):
            (x @ x).sum()
    assert torch.equal(torch.cuda.get_rng_state(), state)
