"""Instrumented conv2d and batchnorm2d as autograd functions over the compiled kernels.

Shapes: x (N, C, H, W), weight (K, C, R, S), output (N, K, P, Q); float32 or float64, CPU (C
kernels) or CUDA (when built with CUDA). Forward *and* backward run the instrumented kernels, so in
``sr``/``rr`` mode every add/mul/fma/div of the forward pass, of the input gradient and of the
weight/bias gradients is perturbed.

Random streams: each kernel call draws a fresh call id from a :class:`KernelStream` (seed + call
counter); the kernel keys Philox4x32-10 by (seed, element or thread id, call id, kernel tag). The
same seed and the same sequence of calls give bitwise-identical results on the same device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.errors import InputError
from harness.kernels.build import KernelMode, load_extension, parse_mode

#: call ids are shifted left by 4 bits inside the kernels (low bits = kernel tag)
_CALL_MASK = (1 << 28) - 1
_SEED_MASK = (1 << 64) - 1


@dataclass
class KernelStream:
    """The seed of a layer's random streams and its kernel-call counter.

    Parameters
    ----------
    seed : int
        64-bit key of the Philox streams (taken modulo 2**64).
    calls : int
        Number of kernel calls made so far; every call gets the next id.
    """

    seed: int = 0
    calls: int = 0

    def next_call(self) -> int:
        """Return the next call id (wraps after 2**28 calls)."""
        call = self.calls & _CALL_MASK
        self.calls += 1
        return call

    def reseed(self, seed: int) -> None:
        """Restart the streams from ``seed`` with the call counter at zero."""
        self.seed = int(seed)
        self.calls = 0

    @property
    def signed_seed(self) -> int:
        """The seed as a signed 64-bit integer (how it crosses into C++)."""
        seed = self.seed & _SEED_MASK
        return seed - (1 << 64) if seed >= 1 << 63 else seed


def _pair(name: str, value) -> list[int]:
    if isinstance(value, int):
        value = (value, value)
    value = [int(v) for v in value]
    if len(value) != 2:
        raise InputError(f"{name} must be an int or a pair of ints, got {value!r}")
    return value


def _check_tensor(name: str, tensor: torch.Tensor) -> None:
    if tensor.dtype not in (torch.float32, torch.float64):
        raise InputError(f"{name} must be float32 or float64, got {tensor.dtype}")


class _Conv2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, mode, stream):
        ext = load_extension(mode)
        x, weight = x.contiguous(), weight.contiguous()
        bias_c = bias.contiguous() if bias is not None else None
        out = ext.conv2d_forward(
            x, weight, bias_c, stride, padding, dilation, stream.signed_seed, stream.next_call()
        )
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, mode, stream, bias is not None)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, mode, stream, has_bias = ctx.conf
        ext = load_extension(mode)
        grad_out = grad_out.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = ext.conv2d_backward_input(
                grad_out, weight, list(x.shape), stride, padding, dilation,
                stream.signed_seed, stream.next_call(),
            )  # fmt: skip
        if ctx.needs_input_grad[1] or (has_bias and ctx.needs_input_grad[2]):
            grad_w, grad_b = ext.conv2d_backward_weight(
                x, grad_out, list(weight.shape), has_bias, stride, padding, dilation,
                stream.signed_seed, stream.next_call(),
            )  # fmt: skip
            grad_w = grad_w if ctx.needs_input_grad[1] else None
            grad_b = grad_b if has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None, None, None, None


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    *,
    mode: KernelMode | str = "ieee",
    stream: KernelStream | None = None,
) -> torch.Tensor:
    """2-D convolution (groups=1, zero padding) with instrumented arithmetic.

    Parameters
    ----------
    x : Tensor (N, C, H, W)
    weight : Tensor (K, C, R, S)
    bias : Tensor (K,), optional
    stride, padding, dilation : int or pair of ints
    mode : {"ieee", "sr", "rr"}
        Arithmetic of every add/mul/fma in forward and backward.
    stream : KernelStream, optional
        Seed and call counter; a fresh ``KernelStream(seed=0)`` when omitted (so repeated calls
        without a stream draw the same random numbers).

    Returns
    -------
    Tensor (N, K, P, Q)
        ``P = (H + 2 pad_h - dil_h (R - 1) - 1) // stride_h + 1`` (same for Q).
    """
    mode = parse_mode(mode)
    _check_tensor("x", x)
    if x.dim() != 4 or weight.dim() != 4:
        raise InputError(
            f"conv2d needs x (N, C, H, W) and weight (K, C, R, S), got {tuple(x.shape)} and {tuple(weight.shape)}"
        )
    if weight.shape[1] != x.shape[1]:
        raise InputError(
            f"weight.shape[1] must equal x channels {x.shape[1]} (groups=1), got {weight.shape[1]}"
        )
    stride, padding, dilation = (
        _pair("stride", stride),
        _pair("padding", padding),
        _pair("dilation", dilation),
    )
    stream = stream if stream is not None else KernelStream()
    return _Conv2dFunction.apply(x, weight, bias, stride, padding, dilation, mode, stream)


class _BatchNormTrainFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps, momentum, mode, stream):
        ext = load_extension(mode)
        x = x.contiguous()
        out, mean, invstd = ext.bn_forward_train(
            x, weight, bias, running_mean, running_var, eps, momentum,
            stream.signed_seed, stream.next_call(),
        )  # fmt: skip
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.conf = (mode, stream)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, mean, invstd = ctx.saved_tensors
        mode, stream = ctx.conf
        grad_x, grad_w, grad_b = load_extension(mode).bn_backward_train(
            x, grad_out.contiguous(), weight, mean, invstd, stream.signed_seed, stream.next_call()
        )
        grad_w = grad_w if weight is not None and ctx.needs_input_grad[1] else None
        grad_b = grad_b if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None, None, None, None, None


class _BatchNormApplyFunction(torch.autograd.Function):
    """Normalisation with fixed statistics (eval mode); backward uses plain torch ops."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean, invstd, mode, stream):
        out = load_extension(mode).bn_apply(
            x.contiguous(), weight, bias, mean, invstd, stream.signed_seed, stream.next_call()
        )
        ctx.save_for_backward(x, weight, mean, invstd)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, mean, invstd = ctx.saved_tensors
        shape = (1, -1, 1, 1)
        xhat = (x - mean.view(shape)) * invstd.view(shape)
        scale = invstd if weight is None else weight * invstd
        grad_x = grad_out * scale.view(shape)
        grad_w = (grad_out * xhat).sum((0, 2, 3)) if weight is not None else None
        grad_b = grad_out.sum((0, 2, 3)) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None, None, None


def batch_norm2d(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    mode: KernelMode | str = "ieee",
    stream: KernelStream | None = None,
) -> torch.Tensor:
    """Batch normalisation of (N, C, H, W) with instrumented arithmetic (like ``F.batch_norm``).

    Training (or no running statistics): ``mean = sum(x) / M``, ``var = sum((x - mean)^2) / M``
    over ``M = N H W`` values per channel, ``y = (x - mean) * invstd * weight + bias`` with
    ``invstd = 1 / sqrt(var + eps)``; the running statistics are updated in place inside the kernel
    (``r = (1 - momentum) r + momentum * stat``, unbiased variance). Evaluation: the running
    statistics normalise (forward instrumented; its backward is plain torch).
    """
    mode = parse_mode(mode)
    _check_tensor("x", x)
    if x.dim() != 4:
        raise InputError(f"batch_norm2d needs x (N, C, H, W), got shape {tuple(x.shape)}")
    stream = stream if stream is not None else KernelStream()
    if training or running_mean is None or running_var is None:
        if x.shape[0] * x.shape[2] * x.shape[3] < 2 and training:
            raise InputError(
                f"batch_norm2d in training needs more than 1 value per channel, got shape {tuple(x.shape)}"
            )
        update = training and running_mean is not None and running_var is not None
        return _BatchNormTrainFunction.apply(
            x, weight, bias,
            running_mean if update else None, running_var if update else None,
            float(eps), float(momentum), mode, stream,
        )  # fmt: skip
    invstd = torch.rsqrt(running_var + eps).to(x.dtype)
    return _BatchNormApplyFunction.apply(
        x, weight, bias, running_mean.to(x.dtype), invstd, mode, stream
    )
