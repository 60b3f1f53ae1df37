"""Faster fp64 kernels for the wide recomputation of rr/sr on CPU.

``rr`` and ``sr`` recompute each op in fp64 (see :class:`~harness.perturb.StochasticArithmetic`).
On CPU, ATen has no oneDNN kernel for fp64 convolutions and falls back to ``slow_conv2d``,
which made the fp64 convolutions most of a perturbed training step. Here a 2-D convolution
(any stride and padding, no dilation, one group) and its backward are computed as
channels-last im2col tiles times the weight matrix with MKL's dgemm, 2-3x faster than
``slow_conv2d``. Each output is a sum of the same exact fp64 products, accumulated in another
order: equal to ATen's fp64 result up to fp64 rounding (``tests/test_perturb_wide_ops.py``).

:func:`call` returns None where no fast kernel applies; the caller then runs ATen's own.
"""

from __future__ import annotations

import torch

#: upper bound of one im2col tile, in bytes (fits a large L2 / small L3 slice)
TILE_BYTES = 8 << 20


def _plain_2d(x, weight, stride, padding, dilation, transposed, groups) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float64
        and weight.dtype == torch.float64
        and x.dim() == 4
        and weight.dim() == 4
        and not transposed
        and groups == 1
        and all(d == 1 for d in dilation)
        and len(stride) == 2
        and len(padding) == 2
    )


def _padded_channels_last(x: torch.Tensor, padding) -> torch.Tensor:
    """``x`` as (N, H + 2 ph, W + 2 pw, C), zero-padded, contiguous."""
    n, c, h, w = x.shape
    ph, pw = padding
    out = x.new_zeros((n, h + 2 * ph, w + 2 * pw, c))
    out[:, ph : ph + h, pw : pw + w, :].copy_(x.permute(0, 2, 3, 1))
    return out


def _format_like(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``out`` in ``ref``'s memory format (channels-last models keep it, as with ATen)."""
    channels_last = ref.is_contiguous(memory_format=torch.channels_last) and not ref.is_contiguous()
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def _output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _patch_tiles(xp: torch.Tensor, kernel, stride, out_hw):
    """Yield ``(n, h0, h1, cols)``: im2col rows of output rows ``h0:h1`` of sample ``n``, each
    row the (kh, kw, C) patch in channels-last order."""
    n_samples, _, _, c = xp.shape
    kh, kw = kernel
    sh, sw = stride
    ho, wo = out_hw
    s0, s1, s2, s3 = xp.stride()
    row_bytes = wo * kh * kw * c * xp.element_size()
    rows = max(1, min(ho, TILE_BYTES // max(row_bytes, 1)))
    buffer = xp.new_empty((rows * wo, kh * kw * c))
    for n in range(n_samples):
        for h0 in range(0, ho, rows):
            h1 = min(ho, h0 + rows)
            view = xp.as_strided(
                (h1 - h0, wo, kh, kw, c),
                (sh * s1, sw * s2, s1, s2, s3),
                xp.storage_offset() + n * s0 + h0 * sh * s1,
            )
            cols = buffer[: (h1 - h0) * wo]
            cols.view(h1 - h0, wo, kh, kw, c).copy_(view)
            yield n, h0, h1, cols


def _weight_matrix(weight: torch.Tensor) -> torch.Tensor:
    """(Cout, C, kh, kw) -> (kh kw C, Cout), the im2col rows' order (contiguous)."""
    cout = weight.shape[0]
    return weight.permute(2, 3, 1, 0).reshape(-1, cout).contiguous()


def conv2d(x, weight, bias, stride, padding) -> torch.Tensor:
    """fp64 2-D convolution (no dilation, one group) as im2col tiles times a matrix."""
    n, _, h, w = x.shape
    cout, _, kh, kw = weight.shape
    ho = _output_size(h, kh, stride[0], padding[0])
    wo = _output_size(w, kw, stride[1], padding[1])
    rows = _weight_matrix(weight).t()  # (Cout, kh kw C), a transposed view
    out = x.new_empty((n, cout, ho * wo))
    for i, h0, h1, cols in _patch_tiles(
        _padded_channels_last(x, padding), (kh, kw), stride, (ho, wo)
    ):
        # (Cout, K) @ (K, tile) straight into the NCHW output: MKL's fastest layout here
        torch.mm(rows, cols.t(), out=out[i, :, h0 * wo : h1 * wo])
    if bias is not None:
        out += bias.view(1, cout, 1)
    return out.view(n, cout, ho, wo)


def conv2d_grad_weight(grad_out, x, kernel, stride, padding) -> torch.Tensor:
    """``dL/dW`` = sum over samples and positions of patch (x) grad, in fp64."""
    n, cout, ho, wo = grad_out.shape
    c = x.shape[1]
    kh, kw = kernel
    # (Cout, Ho Wo) rows of each sample: a column block of it is a plain (no transpose) matrix
    grad_rows = grad_out.contiguous().view(n, cout, ho * wo)
    total = x.new_zeros((cout, kh * kw * c))
    for i, h0, h1, cols in _patch_tiles(
        _padded_channels_last(x, padding), kernel, stride, (ho, wo)
    ):
        total.addmm_(grad_rows[i, :, h0 * wo : h1 * wo], cols)
    return total.view(cout, kh, kw, c).permute(0, 3, 1, 2).contiguous()


def conv2d_grad_input(grad_out, weight, padding) -> torch.Tensor:
    """``dL/dx`` for stride 1: the convolution of the gradient with the flipped, transposed
    kernel, padded by ``k - 1 - p``."""
    kh, kw = weight.shape[2:]
    flipped = weight.flip(2, 3).transpose(0, 1)
    return conv2d(grad_out, flipped, None, (1, 1), (kh - 1 - padding[0], kw - 1 - padding[1]))


def convolution(x, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    if not _plain_2d(x, weight, stride, padding, dilation, transposed, groups):
        return None
    return _format_like(conv2d(x, weight, bias, tuple(stride), tuple(padding)), x)


def convolution_backward(
    grad_out,
    x,
    weight,
    bias_sizes,
    stride,
    padding,
    dilation,
    transposed,
    output_padding,
    groups,
    output_mask,
):
    if not _plain_2d(x, weight, stride, padding, dilation, transposed, groups):
        return None
    if grad_out.dtype != torch.float64:
        return None
    kernel = tuple(weight.shape[2:])
    want_input, want_weight, want_bias = output_mask
    if want_input and (
        tuple(stride) != (1, 1) or any(p > k - 1 for p, k in zip(padding, kernel, strict=True))
    ):
        return None
    grad_input = (
        _format_like(conv2d_grad_input(grad_out, weight, tuple(padding)), x) if want_input else None
    )
    grad_weight = (
        _format_like(conv2d_grad_weight(grad_out, x, kernel, tuple(stride), tuple(padding)), weight)
        if want_weight
        else None
    )
    grad_bias = grad_out.sum((0, 2, 3)) if want_bias else None
    return grad_input, grad_weight, grad_bias


HANDLERS = {
    "aten.convolution": convolution,
    "aten.convolution_backward": convolution_backward,
}


def call(op_name: str, args, kwargs):
    """The op's fp64 result from a fast kernel, or None where none applies."""
    handler = HANDLERS.get(op_name)
    if handler is None:
        return None
    return handler(*args, **kwargs)


__all__ = ["HANDLERS", "TILE_BYTES", "call", "conv2d"]
