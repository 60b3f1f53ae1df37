"""FastSurferCNN, the published v1 network (Henschel et al., NeuroImage 219, 2020).

Re-implemented from the v1 reference (Deep-MI/FastSurfer ``FastSurferCNN/models/networks.py`` and
``sub_module.py`` of the v1 release). Every block keeps one shared PReLU (a single learnable
slope), every convolution has a bias, every batch norm is affine; the competitive ("maxout")
merges are element-wise maxima:

- input block: BN(x) -> conv 5x5 -> BN = a -> PReLU -> conv 5x5 -> BN = b -> max(a, b) = m ->
  PReLU -> conv 1x1 -> BN
- block: PReLU(x) -> conv 5x5 -> BN = a -> max(x, a) = m1 -> PReLU -> conv 5x5 -> BN = b ->
  max(m1, b) = m2 -> PReLU -> conv 1x1 -> BN
- encoder: block, then 2x2 max-pooling that keeps its indices (the first encoder uses the input
  block); bottleneck: a block; decoder: max-unpool with the encoder's indices, max with the
  encoder's (pre-pooling) output, block; classifier: conv 1x1 to the class logits.

Shape letters: N batch, C channels, H/W in-plane (H and W divisible by ``2**depth``).
"""

from __future__ import annotations

import torch
from torch import nn

from harness.errors import InputError

#: FastSurfer v1 classes per view (axial and coronal: 79; sagittal merges hemispheres: 51).
CLASSES_PER_VIEW = {"axial": 79, "coronal": 79, "sagittal": 51}
#: presets of :func:`fastsurfer_config`: the published width; ``small``, sized for CPU studies on
#: 32^3 grids (segments at Dice ~0.7-0.8 in 15 epochs); ``tiny``, a narrow net for CPU tests that
#: cannot tell same-intensity cortical parcels apart.
PRESETS = {
    "full": {"num_filters": 64, "kernel_size": 5, "depth": 4},
    "small": {"num_filters": 32, "kernel_size": 3, "depth": 3},
    "tiny": {"num_filters": 8, "kernel_size": 3, "depth": 2},
}


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2)


class CompetitiveDenseBlock(nn.Module):
    """Competitive dense block: three convolutions merged by maxout (v1 ``CompetitiveDenseBlock``).

    Parameters
    ----------
    num_filters : int
        Channels in and out.
    kernel_size : int
        Edge of the first two (odd, "same"-padded) convolutions; the third is 1x1.
    """

    def __init__(self, num_filters: int, kernel_size: int):
        super().__init__()
        self.conv0 = _conv(num_filters, num_filters, kernel_size)
        self.conv1 = _conv(num_filters, num_filters, kernel_size)
        self.conv2 = _conv(num_filters, num_filters, 1)
        self.bn1 = nn.BatchNorm2d(num_filters)
        self.bn2 = nn.BatchNorm2d(num_filters)
        self.bn3 = nn.BatchNorm2d(num_filters)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.bn1(self.conv0(self.prelu(x)))
        max1 = torch.maximum(x, first)
        second = self.bn2(self.conv1(self.prelu(max1)))
        max2 = torch.maximum(max1, second)
        return self.bn3(self.conv2(self.prelu(max2)))


class CompetitiveDenseBlockInput(nn.Module):
    """First block: batch norm on the raw input, two convolutions merged by maxout, 1x1 conv.

    Parameters
    ----------
    in_channels : int
        Input channels (FastSurfer: 7 thick-slice channels).
    num_filters : int
    kernel_size : int
    """

    def __init__(self, in_channels: int, num_filters: int, kernel_size: int):
        super().__init__()
        self.conv0 = _conv(in_channels, num_filters, kernel_size)
        self.conv1 = _conv(num_filters, num_filters, kernel_size)
        self.conv2 = _conv(num_filters, num_filters, 1)
        self.bn0 = nn.BatchNorm2d(in_channels)
        self.bn1 = nn.BatchNorm2d(num_filters)
        self.bn2 = nn.BatchNorm2d(num_filters)
        self.bn3 = nn.BatchNorm2d(num_filters)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.bn1(self.conv0(self.bn0(x)))
        second = self.bn2(self.conv1(self.prelu(first)))
        max1 = torch.maximum(first, second)
        return self.bn3(self.conv2(self.prelu(max1)))


class EncoderBlock(nn.Module):
    """A dense block followed by 2x2 max-pooling that returns its indices."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, return_indices=True)

    def forward(self, x: torch.Tensor):
        """Return (pooled output, pre-pooling output for the skip, pooling indices)."""
        skip = self.block(x)
        pooled, indices = self.pool(skip)
        return pooled, skip, indices


class DecoderBlock(nn.Module):
    """Max-unpooling with the encoder's indices, maxout with the skip connection, dense block."""

    def __init__(self, num_filters: int, kernel_size: int):
        super().__init__()
        self.unpool = nn.MaxUnpool2d(kernel_size=2, stride=2)
        self.block = CompetitiveDenseBlock(num_filters, kernel_size)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        unpooled = self.unpool(x, indices, output_size=skip.shape[-2:])
        return self.block(torch.maximum(unpooled, skip))


class FastSurferCNN(nn.Module):
    """FastSurferCNN v1: competitive dense encoder/decoder on thick-slice input.

    Parameters
    ----------
    num_classes : int
        Output classes (79 axial/coronal, 51 sagittal).
    in_channels : int
        Thick-slice channels (7).
    num_filters : int
        Feature maps in every block (64).
    kernel_size : int
        Odd edge of the spatial convolutions (5).
    depth : int
        Encoder (and decoder) blocks (4); H and W must be divisible by ``2**depth``.

    Notes
    -----
    Initialisation as in v1: convolution weights Kaiming-normal (``fan_out``, leaky ReLU gain),
    batch-norm weight 1 and bias 0; convolution biases keep torch's default. All draws come from
    torch's global RNG: seed it (or use :func:`torch.random.fork_rng`) before constructing.
    """

    def __init__(
        self,
        num_classes: int = 79,
        in_channels: int = 7,
        num_filters: int = 64,
        kernel_size: int = 5,
        depth: int = 4,
    ):
        super().__init__()
        for name, value in (
            ("num_classes", num_classes),
            ("in_channels", in_channels),
            ("num_filters", num_filters),
            ("depth", depth),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise InputError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        self.num_classes, self.in_channels, self.depth = num_classes, in_channels, depth
        first = CompetitiveDenseBlockInput(in_channels, num_filters, kernel_size)
        self.encoders = nn.ModuleList(
            [EncoderBlock(first)]
            + [
                EncoderBlock(CompetitiveDenseBlock(num_filters, kernel_size))
                for _ in range(depth - 1)
            ]
        )
        self.bottleneck = CompetitiveDenseBlock(num_filters, kernel_size)
        self.decoders = nn.ModuleList(
            [DecoderBlock(num_filters, kernel_size) for _ in range(depth)]
        )
        self.classifier = nn.Conv2d(num_filters, num_classes, kernel_size=1)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1.0)
                nn.init.constant_(module.bias, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, H, W) of a thick-slice batch (N, in_channels, H, W)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InputError(
                f"input must have shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        multiple = 2**self.depth
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise InputError(
                f"input H and W must be divisible by 2**depth = {multiple}, got "
                f"{tuple(x.shape[-2:])}"
            )
        skips = []
        for encoder in self.encoders:
            x, skip, indices = encoder(x)
            skips.append((skip, indices))
        x = self.bottleneck(x)
        for decoder, (skip, indices) in zip(self.decoders, reversed(skips), strict=True):
            x = decoder(x, skip, indices)
        return self.classifier(x)


def fastsurfer_config(view: str, preset: str = "full") -> dict:
    """Constructor kwargs of :class:`FastSurferCNN` for a view and a preset.

    Parameters
    ----------
    view : {"axial", "coronal", "sagittal"}
        Sets ``num_classes`` (79, 79, 51).
    preset : {"full", "small", "tiny"}
        ``full``: the published network (64 filters, 5x5, depth 4); ``small``: 32 filters, 3x3,
        depth 3 for CPU studies (inputs divisible by 8); ``tiny``: 8 filters, 3x3, depth 2 for
        CPU tests (inputs divisible by 4).
    """
    if view not in CLASSES_PER_VIEW:
        raise InputError(f"view must be one of {list(CLASSES_PER_VIEW)}, got {view!r}")
    if preset not in PRESETS:
        raise InputError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
    return {"num_classes": CLASSES_PER_VIEW[view], "in_channels": 7, **PRESETS[preset]}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
