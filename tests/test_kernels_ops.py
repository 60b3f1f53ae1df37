"""IEEE kernels against torch (float64), gradcheck, and the float32 path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.errors import InputError
from harness.kernels import batch_norm2d, conv2d, load_extension

CONV_CASES = [
    {"stride": 1, "padding": 0, "dilation": 1},
    {"stride": 2, "padding": 1, "dilation": 1},
    {"stride": (1, 2), "padding": (2, 1), "dilation": (2, 1)},
]


@pytest.fixture(scope="module", autouse=True)
def ieee_extension():
    # Builds (or loads from cache) once; a missing compiler fails every test here loudly.
    return load_extension("ieee")


def _conv_inputs(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 9, 8, generator=gen, dtype=dtype)
    w = torch.randn(4, 3, 3, 2, generator=gen, dtype=dtype)
    b = torch.randn(4, generator=gen, dtype=dtype)
    return x, w, b


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_ieee_conv_forward_backward_match_torch_fp64(case, with_bias):
    x, w, b = _conv_inputs()
    b = b if with_bias else None
    leaves = [t.clone().requires_grad_() for t in (x, w) + ((b,) if with_bias else ())]
    ref_leaves = [t.detach().clone().requires_grad_() for t in leaves]
    out = conv2d(leaves[0], leaves[1], leaves[2] if with_bias else None, **case)
    ref = F.conv2d(ref_leaves[0], ref_leaves[1], ref_leaves[2] if with_bias else None, **case)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    for mine, theirs in zip(leaves, ref_leaves, strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-12, atol=1e-12)


def test_ieee_conv_fp32_close_to_torch():
    x, w, b = _conv_inputs(torch.float32)
    out = conv2d(x, w, b, padding=1)
    torch.testing.assert_close(out, F.conv2d(x, w, b, padding=1), rtol=1e-5, atol=1e-5)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("affine", [True, False])
def test_ieee_batchnorm_train_matches_torch_fp64(affine):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 5, 6, generator=gen, dtype=torch.float64) * 3 + 1
    gamma = torch.randn(4, generator=gen, dtype=torch.float64) if affine else None
    beta = torch.randn(4, generator=gen, dtype=torch.float64) if affine else None
    stats = [torch.rand(4, generator=gen, dtype=torch.float64) + 0.5 for _ in range(2)]
    ref_stats = [s.clone() for s in stats]
    leaves = [x] + ([gamma, beta] if affine else [])
    mine = [t.clone().requires_grad_() for t in leaves]
    theirs = [t.clone().requires_grad_() for t in leaves]
    args = (mine[1], mine[2]) if affine else (None, None)
    ref_args = (theirs[1], theirs[2]) if affine else (None, None)
    out = batch_norm2d(mine[0], *stats, *args, training=True, momentum=0.2, eps=1e-3)
    ref = F.batch_norm(theirs[0], *ref_stats, *ref_args, training=True, momentum=0.2, eps=1e-3)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(stats, ref_stats, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-10)


def test_ieee_batchnorm_eval_matches_torch_fp64():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    mean, var = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64) + 0.1
    gamma = torch.randn(3, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(3, dtype=torch.float64, requires_grad=True)
    out = batch_norm2d(x, mean, var, gamma, beta, training=False)
    ref = F.batch_norm(x, mean, var, gamma, beta, training=False)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g_mine = torch.autograd.grad(out.sum(), (x, gamma, beta))
    g_ref = torch.autograd.grad(ref.sum(), (x, gamma, beta))
    torch.testing.assert_close(g_mine, g_ref)


def test_gradcheck_conv_fp64():
    x, w, b = (t[..., :5, :5].contiguous() if t.dim() == 4 else t for t in _conv_inputs())
    inputs = tuple(t.clone().requires_grad_() for t in (x[:1], w, b))
    assert torch.autograd.gradcheck(
        lambda a, c, d: conv2d(a, c, d, stride=(2, 1), padding=1, dilation=(1, 2)), inputs
    )


def test_gradcheck_batchnorm_fp64():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, g, b: batch_norm2d(a, None, None, g, b, training=True), (x, gamma, beta)
    )


def test_bad_inputs_raise_input_error():
    x, w, b = _conv_inputs()
    with pytest.raises(InputError, match="mode"):
        conv2d(x, w, b, mode="ud")
    with pytest.raises(InputError, match="float32 or float64"):
        conv2d(x.half(), w.half())
    with pytest.raises(InputError, match="weight.shape"):
        conv2d(x, w[:, :2])
    with pytest.raises(InputError, match="stride"):
        conv2d(x, w, stride=(1, 2, 3))


def test_build_dir_removes_a_stale_lock_and_reports_an_unwritable_cache(tmp_path):
    import os
    import time

    from harness.errors import MissingDependencyError
    from harness.kernels.build import STALE_LOCK_SECONDS, make_build_dir

    folder = make_build_dir(tmp_path / "a" / "b")
    lock = folder / "lock"
    lock.write_text("")
    make_build_dir(folder)  # a fresh lock belongs to a running build: kept
    assert lock.exists()
    old = time.time() - STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    with pytest.warns(RuntimeWarning, match="stale build lock"):
        make_build_dir(folder)
    assert not lock.exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(MissingDependencyError, match="HARNESS_KERNELS_CACHE"):
        make_build_dir(blocker / "cache")
