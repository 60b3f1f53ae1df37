"""The fused CPU kernels give bitwise the results of the torch/numpy fallback.

The fallback (``native=False``) is written with torch's own ops and numpy's uint64 arithmetic,
independently of the C++ code, so equality checks each kernel's formulas and random words.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_perturb_engine import training_step

from harness.perturb import StochasticArithmetic, native, rounding
from harness.perturb.modes import SIGNIFICAND_BITS
from harness.perturb.rng import KeyedStreams, stream_key, stream_words, uniform_from_words

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(scope="module")
def ext():
    return native.load()


def _values(n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Signed magnitudes over the dtype's normal range, its subnormals, and the specials."""
    g = torch.Generator().manual_seed(seed)
    info = torch.finfo(dtype)
    low, high = np.log(info.smallest_normal) + 1, np.log(info.max) - 1
    mags = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(low, high, generator=g))
    signs = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    # subnormals with every significand bit in use, and a few short ones
    steps = torch.randint(1, 2 ** (SIGNIFICAND_BITS[dtype] - 1), (200,), generator=g).double()
    tiny = torch.cat([steps, torch.tensor([1.0, 3.0, 100.0])]) * (info.smallest_normal * info.eps)
    specials = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1.0, -2.0])
    return torch.cat([mags * signs, tiny, -tiny, specials.double()]).to(dtype)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality, NaNs and the sign of zero included."""
    return (
        a.dtype == b.dtype
        and torch.equal(a.nan_to_num(0.5), b.nan_to_num(0.5))
        and bool((a.isnan() == b.isnan()).all())
        and bool((torch.signbit(a) == torch.signbit(b))[~a.isnan()].all())
    )


def test_stream_words_equal_numpy(ext):
    for key in (0, 1, 2**62 + 12345, stream_key(3, 7)):
        got = ext.stream_words(key, 5000).numpy().view(np.uint64)
        assert np.array_equal(got, stream_words(key, 5000))


def test_stream_words_look_uniform():
    words = stream_words(stream_key(0, 0), 200_000)
    u = uniform_from_words(words)
    assert u.min() >= 0 and u.max() < 1
    counts, _ = np.histogram(u, bins=64, range=(0, 1))
    expected = len(u) / 64
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 120  # 63 degrees of freedom: p ~ 1e-5
    assert abs((words >> np.uint64(63)).mean() - 0.5) < 0.005


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["rr", "sr", "ud"])
@pytest.mark.parametrize("t", ["p", 5])
def test_in_place_kernel_equals_fallback(ext, dtype, kind, t):
    t = SIGNIFICAND_BITS[dtype] if t == "p" else t
    y = _values(20_000, dtype)
    streams = KeyedStreams(11)
    key = streams.kernel_seed(4)
    expected = y.clone()
    if kind == "rr":
        rounding.random_rounding_(expected, t, streams.centred_uniform(y, 4))
    elif kind == "ud":
        rounding.up_down_(expected, streams.bits(y, 4))
    else:
        expected = rounding.stochastic_rounding(y, dtype, t, streams.uniform(y, 4))
    got = y.clone()
    ext.perturb_(got, native.KIND[kind], t, key)
    assert _same(got, expected)
    if kind == "ud" or t < SIGNIFICAND_BITS[dtype]:  # (rr at t = p moves powers of two only)
        assert not torch.equal(got.nan_to_num(0), y.nan_to_num(0))


@pytest.mark.parametrize(
    ("wide", "dtype"),
    [
        (torch.float64, torch.float32),
        (torch.float64, torch.float16),
        (torch.float32, torch.float16),
        (torch.float32, torch.bfloat16),
    ],
)
@pytest.mark.parametrize("kind", ["rr", "sr"])
@pytest.mark.parametrize("t", ["p", 6])
def test_round_from_wide_kernel_equals_fallback(ext, wide, dtype, kind, t):
    t = SIGNIFICAND_BITS[dtype] if t == "p" else t
    x = _values(20_000, dtype, seed=3).to(wide)
    x = x + x * torch.rand(x.shape, generator=torch.Generator().manual_seed(5)).to(wide) * 1e-3
    streams = KeyedStreams(2)
    key = streams.kernel_seed(9)
    if kind == "rr":
        y = x.clone()
        rounding.random_rounding_(y, t, streams.centred_uniform(y, 9))
        expected = y.to(dtype)
    else:
        expected = rounding.stochastic_rounding(x, dtype, t, streams.uniform(x, 9))
    got = ext.round_from_wide(x, dtype, native.KIND[kind], t, key)
    assert _same(got, expected)
    assert not torch.equal(got.nan_to_num(0), x.to(dtype).nan_to_num(0))


@pytest.mark.parametrize("mode", ["rr", "sr", "ud"])
@pytest.mark.parametrize("wide", [True, False])
def test_training_step_native_equals_fallback(mode, wide):
    precision = None if wide else 20
    fast = training_step(mode, 3, wide=wide, precision=precision)
    slow = training_step(mode, 3, wide=wide, precision=precision, native=False)
    assert all(torch.equal(a, b) for a, b in zip(fast, slow, strict=True))


def test_environment_switch_selects_fallback(monkeypatch):
    monkeypatch.setenv("HARNESS_PERTURB_NATIVE", "0")
    assert native.extension() is None
    monkeypatch.setenv("HARNESS_PERTURB_NATIVE", "1")
    assert native.extension() is not None


def test_non_contiguous_results_use_the_fallback():
    x = torch.randn(64, 32).t()  # a transposed (non-contiguous) input
    with StochasticArithmetic("ud", seed=1) as sa:
        y = x * 3.0
    assert sa.counter == 1
    assert torch.equal(
        (y.double() - x.double() * 3).abs() > 0, torch.ones_like(y, dtype=torch.bool)
    )


def test_unbuildable_extension_warns_and_falls_back(monkeypatch):
    from harness.errors import MissingDependencyError

    def no_toolchain():
        raise MissingDependencyError("no C++ compiler")

    native._loaded.cache_clear()
    monkeypatch.setattr(native, "load", no_toolchain)
    try:
        with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler.*fallback"):
            assert native.extension() is None
        fallback = training_step("sr", 2)
    finally:
        native._loaded.cache_clear()
    monkeypatch.undo()
    assert native.extension() is not None
    assert all(torch.equal(a, b) for a, b in zip(fallback, training_step("sr", 2), strict=True))


def test_streams_are_uncorrelated_within_and_across_keys():
    """Lag-1 correlation within a stream, and correlation between the streams of adjacent
    counters and of two seeds, stay within 5 standard errors of 0."""
    n = 100_000
    bound = 5 / np.sqrt(n)

    def u(seed: int, counter: int) -> np.ndarray:
        return uniform_from_words(stream_words(stream_key(seed, counter), n))

    first = u(0, 0)
    assert abs(np.corrcoef(first[:-1], first[1:])[0, 1]) < bound
    for other in (u(0, 1), u(0, 2), u(1, 0)):
        assert abs(np.corrcoef(first, other)[0, 1]) < bound


def test_unwritable_cache_warns_and_falls_back(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HARNESS_KERNELS_CACHE", str(blocker / "cache"))
    native._loaded.cache_clear()
    native.load.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="HARNESS_KERNELS_CACHE"):
            assert native.extension() is None
    finally:
        monkeypatch.undo()
        native._loaded.cache_clear()
        native.load.cache_clear()
    assert native.extension() is not None  # loads again from the usual cache


@pytest.mark.parametrize("mode", ["rr", "sr"])
def test_fp16_to_bf16_conversion_is_rounded_by_both_paths(mode):
    x = _values(5000, torch.float16, seed=8)
    x = x[x.isfinite()]
    results = []
    for use_native in (True, False):
        with StochasticArithmetic(mode, seed=4, precision=5, native=use_native):
            results.append(x.to(torch.bfloat16))
    assert _same(*results)


@pytest.mark.parametrize("native_kernels", [True, False])
@pytest.mark.parametrize("wide", [True, False])
def test_rr_keeps_the_sign_of_zero(native_kernels, wide):
    x = torch.full((64,), -0.0)
    with StochasticArithmetic("rr", seed=0, precision=10, wide=wide, native=native_kernels):
        y = x * 1.0
    assert torch.signbit(y).all() and (y == 0).all()
