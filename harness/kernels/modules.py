"""Drop-in modules: :class:`InstrumentedConv2d` and :class:`InstrumentedBatchNorm2d`.

They subclass :class:`torch.nn.Conv2d` / :class:`torch.nn.BatchNorm2d`, so parameters, buffers and
``state_dict`` keys are identical; only ``forward`` differs (it runs the instrumented kernels).
The arithmetic ``mode`` and the random :class:`KernelStream` are plain attributes, not state.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.errors import InputError
from harness.kernels.build import KernelMode, parse_mode
from harness.kernels.functional import KernelStream, batch_norm2d, conv2d


class InstrumentedConv2d(nn.Conv2d):
    """:class:`torch.nn.Conv2d` whose forward and backward run the instrumented kernels.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`torch.nn.Conv2d`; ``groups`` must be 1 and ``padding_mode`` ``"zeros"``.
    mode : {"ieee", "sr", "rr"}
    seed : int
        Key of this layer's random streams.
    """

    def __init__(self, *args, mode: KernelMode | str = "ieee", seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise InputError(f"InstrumentedConv2d supports groups=1 only, got groups={self.groups}")
        if self.padding_mode != "zeros":
            raise InputError(
                f"InstrumentedConv2d supports padding_mode='zeros' only, got {self.padding_mode!r}"
            )
        self.mode = parse_mode(mode)
        self.stream = KernelStream(seed)
        self._explicit_padding = self._resolve_padding()

    def _resolve_padding(self) -> tuple[int, int]:
        if not isinstance(self.padding, str):
            return tuple(self.padding)
        if self.padding == "valid":
            return (0, 0)
        pads = []
        for k, d in zip(self.kernel_size, self.dilation, strict=True):
            total = d * (k - 1)
            if total % 2:
                raise InputError(
                    f"padding='same' needs a symmetric padding, got kernel_size={self.kernel_size}, dilation={self.dilation}"
                )
            pads.append(total // 2)
        return tuple(pads)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, mode="ieee", seed: int = 0) -> InstrumentedConv2d:
        """An instrumented copy of ``conv`` sharing its parameters (same tensors)."""
        new = cls(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
            padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
            bias=conv.bias is not None, padding_mode=conv.padding_mode, mode=mode, seed=seed,
            device="meta",
        )  # fmt: skip
        new.weight = conv.weight
        new.bias = conv.bias
        new.train(conv.training)
        return new

    def reseed(self, seed: int) -> None:
        """Restart this layer's random streams from ``seed``."""
        self.stream.reseed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(
            x, self.weight, self.bias, self.stride, self._explicit_padding, self.dilation,
            mode=self.mode, stream=self.stream,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode.value}, seed={self.stream.seed}"


class InstrumentedBatchNorm2d(nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` whose normalisation runs the instrumented kernels.

    Training mode (or ``track_running_stats=False``): batch statistics, forward and backward
    instrumented, running statistics updated inside the kernel. Eval mode: running statistics,
    forward instrumented. ``momentum=None`` (cumulative average) is supported as in torch.
    """

    def __init__(self, *args, mode: KernelMode | str = "ieee", seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = parse_mode(mode)
        self.stream = KernelStream(seed)

    @classmethod
    def from_batchnorm(
        cls, bn: nn.BatchNorm2d, mode="ieee", seed: int = 0
    ) -> InstrumentedBatchNorm2d:
        """An instrumented copy of ``bn`` sharing its parameters and buffers (same tensors)."""
        new = cls(
            bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
            track_running_stats=bn.track_running_stats, mode=mode, seed=seed, device="meta",
        )  # fmt: skip
        new.weight, new.bias = bn.weight, bn.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(new, name, getattr(bn, name))
        new.train(bn.training)
        return new

    def reseed(self, seed: int) -> None:
        """Restart this layer's random streams from ``seed``."""
        self.stream.reseed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        return batch_norm2d(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=use_batch_stats, momentum=momentum, eps=self.eps,
            mode=self.mode, stream=self.stream,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode.value}, seed={self.stream.seed}"
