"""The fast fp64 convolution kernels of the rr/sr recomputation equal ATen's fp64 ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.perturb import StochasticArithmetic, wide_ops

CASES = [  # (kernel, stride, padding)
    (5, 1, 2),
    (1, 1, 0),
    (3, 2, 1),
    (5, 1, 0),
    (3, 1, 2),
    (4, 3, 0),
]


def _data(kernel: int, stride: int, padding: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 13, 11, generator=g, dtype=torch.float64)
    w = torch.randn(4, 5, kernel, kernel, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    y = torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)
    return x, w, b, y, torch.randn(y.shape, generator=g, dtype=torch.float64)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype and a.is_contiguous()
    torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize(("kernel", "stride", "padding"), CASES)
def test_forward_equals_aten_fp64(kernel, stride, padding):
    x, w, b, y, _ = _data(kernel, stride, padding)
    got = wide_ops.call(
        "aten.convolution", (x, w, b, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1), {}
    )
    _close(got, y)


@pytest.mark.parametrize(("kernel", "stride", "padding"), CASES)
def test_backward_equals_aten_fp64(kernel, stride, padding):
    x, w, _, _, grad = _data(kernel, stride, padding)
    want_input = stride == 1 and padding <= kernel - 1
    args = (grad, x, w, [4], [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1)
    mask = [want_input, True, True]
    expected = torch.ops.aten.convolution_backward(*args, mask)
    got = wide_ops.call("aten.convolution_backward", (*args, mask), {})
    for mine, ref in zip(got, expected, strict=True):
        if ref is None:
            assert mine is None
        else:
            _close(mine, ref)


def test_small_tiles_give_the_same_result(monkeypatch):
    x, w, b, y, grad = _data(5, 1, 2)
    monkeypatch.setattr(wide_ops, "TILE_BYTES", 1)  # one output row per tile
    _close(wide_ops.conv2d(x, w, b, (1, 1), (2, 2)), y)
    gw = wide_ops.conv2d_grad_weight(grad, x, (5, 5), (1, 1), (2, 2))
    ref = torch.ops.aten.convolution_backward(
        grad, x, w, [4], [1, 1], [2, 2], [1, 1], False, [0, 0], 1, [False, True, False]
    )[1]
    _close(gw, ref)


@pytest.mark.parametrize(
    "args",
    [
        # dilation, transposed, groups: no fast kernel
        (1, 1, [2, 2], False, 1),
        (1, 0, [1, 1], True, 1),
        (1, 0, [1, 1], False, 5),
    ],
)
def test_unsupported_convolutions_fall_back(args):
    _, padding, dilation, transposed, groups = args
    x = torch.randn(1, 5, 8, 8, dtype=torch.float64)
    w = torch.randn(5, 5 // groups, 3, 3, dtype=torch.float64)
    call = (x, w, None, [1, 1], [padding] * 2, dilation, transposed, [0, 0], groups)
    assert wide_ops.call("aten.convolution", call, {}) is None
    assert wide_ops.call("aten.add", (x, x), {}) is None
    assert wide_ops.call("aten.convolution", (x.float(), w.float(), *call[2:]), {}) is None


def test_engine_uses_the_fast_kernels(monkeypatch):
    calls = []
    original = wide_ops.call

    def counting(op, args, kwargs):
        out = original(op, args, kwargs)
        calls.append((op, out is not None))
        return out

    monkeypatch.setattr(wide_ops, "call", counting)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 6, 6)
    with StochasticArithmetic("sr", seed=0):
        conv(x).square().sum().backward()
    assert ("aten.convolution", True) in calls
    assert ("aten.convolution_backward", True) in calls


def test_channels_last_inputs_keep_their_memory_format():
    x, w, b, y, grad = _data(3, 1, 1)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    w_cl = w.contiguous(memory_format=torch.channels_last)
    conv_args = (x_cl, w_cl, b, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
    out = wide_ops.call("aten.convolution", conv_args, {})
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, y, rtol=1e-13, atol=1e-12)
    back = (grad, x_cl, w_cl, [4], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, True, True])
    grad_input, grad_weight, _ = wide_ops.call("aten.convolution_backward", back, {})
    assert grad_input.is_contiguous(memory_format=torch.channels_last)
    assert grad_weight.is_contiguous(memory_format=torch.channels_last)
