"""A FastSurfer-like competitive block stack for timing the stochastic-arithmetic engine."""

from __future__ import annotations

import torch
from torch import nn


class CompetitiveBlock(nn.Module):
    """BN -> 5x5 conv (C filters) -> BN -> PReLU, merged with the input by maxout."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.pre = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, 5, padding=2)
        self.post = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)

    def forward(self, x):
        return torch.maximum(x, self.act(self.post(self.conv(self.pre(x)))))


def block_stack(channels: int = 64, blocks: int = 4) -> nn.Sequential:
    return nn.Sequential(*[CompetitiveBlock(channels) for _ in range(blocks)])


def make_step(channels=64, blocks=4, batch=2, size=32, device="cpu"):
    """Return a closure running one training step (forward, MSE loss, backward, Adam)."""
    torch.manual_seed(0)
    model = block_stack(channels, blocks).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, channels, size, size, generator=g).to(device)
    target = torch.randn(batch, channels, size, size, generator=g).to(device)

    def step():
        loss = nn.functional.mse_loss(model(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if x.is_cuda:
            torch.cuda.synchronize()
        return loss

    return step
