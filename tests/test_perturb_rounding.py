"""Pure rounding functions against fp64/numpy brute force, and mode/precision parsing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from harness.errors import InputError
from harness.perturb.modes import SIGNIFICAND_BITS, Mode, resolve_precision
from harness.perturb.rounding import random_rounding, stochastic_rounding, up_down

SPECIALS = [0.0, -0.0, float("inf"), float("-inf"), float("nan")]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _values(n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = _gen(seed)
    span = 8.0 if dtype == torch.float16 else 20.0  # stay within fp16's normal range
    mags = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(-span, span, generator=g))
    signs = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    return (mags * signs).to(dtype)


def test_mode_parse_accepts_names_and_rejects_others():
    assert Mode.parse("SR") is Mode.SR
    assert Mode.parse(Mode.UD) is Mode.UD
    with pytest.raises(InputError, match="mode must be one of"):
        Mode.parse("fuzzy")


def test_resolve_precision_none_int_dict():
    assert resolve_precision(None) == SIGNIFICAND_BITS
    capped = resolve_precision(30)
    assert capped[torch.float32] == 24 and capped[torch.float64] == 30
    assert capped[torch.bfloat16] == 8
    mixed = resolve_precision({"float32": 20, torch.bfloat16: 6})
    assert mixed[torch.float32] == 20 and mixed[torch.bfloat16] == 6
    assert mixed[torch.float16] == 11
    with pytest.raises(InputError, match="precision"):
        resolve_precision(0)
    with pytest.raises(InputError, match="<= 24"):
        resolve_precision({torch.float32: 25})
    with pytest.raises(InputError, match="precision keys"):
        resolve_precision({"int8": 3})


@pytest.mark.parametrize("t", [24, 18, 8])
def test_random_rounding_matches_fp64_brute_force(t):
    y = _values(4000, torch.float32)
    u = torch.rand(y.shape, generator=_gen(1))
    got = random_rounding(y, t, u).numpy()
    y64 = y.double().numpy()
    _, e = np.frexp(y64)
    expected = (y64 + np.ldexp(1.0, e - t) * (u.double().numpy() - 0.5)).astype(np.float32)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_random_rounding_bound_and_uniformity(dtype):
    t = 8 if dtype == torch.float32 else 4
    y = _values(20000, dtype, seed=2)
    got = random_rounding(y, t, torch.rand(y.shape, generator=_gen(3)))
    y64, got64 = y.double(), got.double()
    relative = ((got64 - y64) / y64).abs()
    assert relative.max().item() <= 2.0 ** -(t - 1)
    assert got.dtype == dtype
    # the noise is xi 2^(e-t); rounding to 24 bits quantises xi to steps of 2^(t-24), which
    # for t = 8 keeps it uniform on (-1/2, 1/2) to well within the KS test's resolution
    if dtype == torch.float32:
        _, e = torch.frexp(y64)
        xi = ((got64 - y64) / torch.ldexp(torch.ones_like(y64), e - t)).numpy()
        assert stats.kstest(xi, "uniform", args=(-0.5, 1.0)).pvalue > 1e-3


def test_random_rounding_at_full_precision_changes_only_powers_of_two():
    y = _values(5000, torch.float32, seed=4)
    got = random_rounding(y, 24, torch.rand(y.shape, generator=_gen(5)))
    changed = got != y
    mantissa, _ = torch.frexp(y[changed])
    assert torch.all(mantissa.abs() == 0.5)


@pytest.mark.parametrize("func", ["rr", "ud"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_specials_unchanged(func, dtype):
    y = torch.tensor(SPECIALS, dtype=dtype)
    if func == "rr":
        got = random_rounding(y, 4, torch.full(y.shape, 0.9))
    else:
        got = up_down(y, torch.tensor([True, False, True, False, True]))
    torch.testing.assert_close(got, y, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_up_down_moves_exactly_one_ulp(dtype):
    y = _values(3000, dtype, seed=6)
    up = torch.rand(y.shape, generator=_gen(7)) < 0.5
    got = up_down(y, up)
    np_dtype = np.float32 if dtype == torch.bfloat16 else None
    if np_dtype is None:  # numpy has fp64/fp32/fp16: compare with nextafter directly
        yn = y.numpy()
        expected = np.where(up.numpy(), np.nextafter(yn, np.inf), np.nextafter(yn, -np.inf))
        np.testing.assert_array_equal(got.numpy(), expected)
    else:  # bf16: integer encodings differ by exactly one, in the right direction
        step = got.view(torch.int16).int() - y.view(torch.int16).int()
        assert torch.all(step.abs() == 1)
        assert torch.all((got > y) == up)


def test_stochastic_rounding_exact_values_stay_exact():
    y = _values(5000, torch.float32, seed=8)
    got = stochastic_rounding(y.double(), torch.float32, 24, torch.rand(y.shape, generator=_gen(9)))
    assert torch.equal(got, y)
    specials = torch.tensor(SPECIALS, dtype=torch.float64)
    got = stochastic_rounding(specials, torch.float32, 24, torch.full((5,), 0.5))
    torch.testing.assert_close(got, specials.float(), equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("dtype", "t"), [(torch.float32, 24), (torch.float32, 12), (torch.bfloat16, 8)]
)
def test_stochastic_rounding_neighbours_and_unbiased(dtype, t):
    wide_dtype = torch.float64 if dtype == torch.float32 else torch.float32
    x = _values(40, torch.float64, seed=10).to(wide_dtype)
    draws = 20000
    u = torch.rand((draws, x.numel()), generator=_gen(11), dtype=torch.float64)
    got = stochastic_rounding(x.expand(draws, -1), dtype, t, u).double()
    x64 = x.double()
    _, e = torch.frexp(x64)
    spacing = torch.ldexp(torch.ones_like(x64), e - t)
    lo = torch.floor(x64 / spacing) * spacing
    assert torch.all((got == lo) | (got == lo + spacing))
    fraction = (x64 - lo) / spacing
    # the mean of n Bernoulli(f) roundings has standard deviation spacing*sqrt(f(1-f)/n)
    sd = spacing * torch.sqrt(fraction * (1 - fraction) / draws)
    error = (got.mean(0) - x64).abs()
    assert torch.all(error <= 6 * sd + 1e-12 * spacing)


def test_stochastic_rounding_rejects_narrower_input():
    with pytest.raises(ValueError, match="at least as wide"):
        stochastic_rounding(torch.ones(2, dtype=torch.float16), torch.float32, 24, torch.zeros(2))


def test_random_rounding_no_overflow_near_the_top_of_the_range():
    y = torch.tensor([2.0**127, -(2.0**126) * 1.5, 3.0e38])
    got = random_rounding(y, 4, torch.tensor([0.999, 0.0, 0.7]))
    assert torch.isfinite(got).all()
    assert (((got.double() - y.double()) / y.double()).abs() <= 2.0**-3).all()
