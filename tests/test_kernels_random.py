"""Stochastic modes of the kernels: Philox streams, SR unbiasedness, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from harness.kernels import KernelStream, batch_norm2d, conv2d, load_extension

# Random123 known-answer vectors for Philox4x32-10: (counter, key) -> output
PHILOX_KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]


@pytest.fixture(scope="module")
def ext():
    return {mode: load_extension(mode) for mode in ("ieee", "sr", "rr")}


@pytest.mark.parametrize("ctr, key, expected", PHILOX_KAT)
def test_philox_known_answers(ext, ctr, key, expected):
    assert ext["sr"].philox_block(ctr, key) == expected


def _stream_words(ext, stream: int, blocks: int, seed=(7, 0)) -> np.ndarray:
    words = [ext.philox_block([b, stream, 0, 1], list(seed)) for b in range(blocks)]
    return np.asarray(words, dtype=np.float64).ravel() / 2.0**32


def test_neighbouring_streams_are_uncorrelated_and_uniform(ext):
    blocks = 512  # 2048 uniforms per stream
    streams = [_stream_words(ext["sr"], s, blocks) for s in range(4)]
    bound = 4.0 / np.sqrt(streams[0].size)
    for a, b in zip(streams[:-1], streams[1:], strict=True):
        assert abs(np.corrcoef(a, b)[0, 1]) < bound
    pooled = np.concatenate(streams)
    counts, _ = np.histogram(pooled, bins=32, range=(0.0, 1.0))
    assert stats.chisquare(counts).pvalue > 1e-4


def _single_products(mode, seed=0, size=64):
    """Every output is one rounded product x*w (1x1 conv, one channel): size**2 samples."""
    x = torch.full((1, 1, size, size), 1.0 / 3.0, dtype=torch.float32)
    w = torch.full((1, 1, 1, 1), 0.1, dtype=torch.float32)
    out = conv2d(x, w, mode=mode, stream=KernelStream(seed))
    exact = np.float64(x[0, 0, 0, 0].item()) * np.float64(w.item())
    return out.numpy().ravel().astype(np.float64), exact


def test_sr_rounds_a_product_to_a_neighbour_with_the_right_probability(ext):
    values, exact = _single_products("sr")
    nearest = np.float32(exact)
    lo32 = nearest if np.float64(nearest) <= exact else np.nextafter(nearest, np.float32(-np.inf))
    lo, hi = np.float64(lo32), np.float64(np.nextafter(lo32, np.float32(np.inf)))
    assert lo <= exact <= hi
    assert set(np.unique(values)) <= {lo, hi}
    p_hi = (exact - lo) / (hi - lo)
    n = values.size
    k = int((values == hi).sum())
    assert stats.binomtest(k, n, p_hi).pvalue > 1e-4
    # neighbouring outputs use different streams: their up/down decisions are uncorrelated
    ups = (values == hi).astype(float)
    assert abs(np.corrcoef(ups[:-1], ups[1:])[0, 1]) < 4 / np.sqrt(n)


def test_rr_perturbs_a_product_by_at_most_one_ulp(ext):
    values, exact = _single_products("rr")
    rn = np.float32(exact)
    ulp = np.float64(np.spacing(rn))
    assert np.all(np.abs(values - np.float64(rn)) <= ulp)
    assert len(np.unique(values)) > 1


def test_sr_sum_is_unbiased_where_round_to_nearest_stagnates(ext):
    # 1 + 4096 * 2^-25: each term is a quarter ulp of 1, so RN never moves off 1.0.
    channels = 4097
    x = torch.full((1, channels, 12, 12), 2.0**-25, dtype=torch.float32)
    x[:, 0] = 1.0
    w = torch.ones(1, channels, 1, 1, dtype=torch.float32)
    exact = 1.0 + 4096 * 2.0**-25
    ieee = conv2d(x, w, mode="ieee")
    assert torch.all(ieee == 1.0)
    sr = conv2d(x, w, mode="sr", stream=KernelStream(3)).double().numpy().ravel()
    std_err = sr.std(ddof=1) / np.sqrt(sr.size)
    assert sr.std() > 0
    assert abs(sr.mean() - exact) < 5 * std_err


@pytest.mark.parametrize("mode", ["sr", "rr"])
def test_same_seed_identical_different_seed_differs(ext, mode):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=gen)
    w = torch.randn(4, 3, 3, 3, generator=gen)

    def run(seed):
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        stream = KernelStream(seed)
        y = conv2d(xs, ws, padding=1, mode=mode, stream=stream)
        z = batch_norm2d(y, None, None, training=True, mode=mode, stream=stream)
        z.pow(2).sum().backward()
        return torch.cat([z.detach().ravel(), xs.grad.ravel(), ws.grad.ravel()])

    first, again, other = run(11), run(11), run(12)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_results_do_not_depend_on_thread_count(ext):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 10, 10, generator=gen)
    w = torch.randn(3, 4, 3, 3, generator=gen)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = conv2d(x, w, mode="sr", stream=KernelStream(1))
        torch.set_num_threads(2)
        two = conv2d(x, w, mode="sr", stream=KernelStream(1))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)


def test_stream_call_counter_changes_the_noise(ext):
    x = torch.randn(1, 2, 6, 6)
    w = torch.randn(2, 2, 3, 3)
    stream = KernelStream(4)
    a = conv2d(x, w, mode="sr", stream=stream)
    b = conv2d(x, w, mode="sr", stream=stream)
    assert stream.calls == 2
    assert not torch.equal(a, b)
    stream.reseed(4)
    assert torch.equal(conv2d(x, w, mode="sr", stream=stream), a)
