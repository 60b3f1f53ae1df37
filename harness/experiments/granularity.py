"""Op-level vs kernel-level stochastic arithmetic on the same model (docs/design.md, "Granularity").

The op-level engine (``harness.perturb``) rounds each conv/batchnorm *result* stochastically; the
instrumented kernels (``harness.kernels``) round every add/mul/fma inside them. They cannot agree
value for value; what must agree is the *variability* they induce. This experiment runs the same
conv -> BN -> PReLU -> conv -> BN block forward and backward ``repeats`` times under each
granularity (only conv and batchnorm perturbed in both), and reports the significant bits of the
output and of each weight gradient against the IEEE run.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from harness.errors import InputError
from harness.perturb.modes import Mode
from harness.perturb.seeds import torch_seed
from harness.train.config import KERNEL_MODES

#: the perturbing modes both levels implement
LEVEL_MODES = tuple(m for m in KERNEL_MODES if m is not Mode.IEEE)

#: ATen ops of conv and batchnorm (forward and backward), the layers the kernels instrument.
CONV_BN_OPS = [
    "aten.convolution",
    "aten.convolution_backward",
    "aten.native_batch_norm",
    "aten.native_batch_norm_backward",
]


@dataclass
class GranularityConfig:
    mode: Mode | str = Mode.SR
    repeats: int = 8
    batch: int = 4
    channels: int = 8
    size: int = 16
    seed: int = 0

    def __post_init__(self):
        self.mode = Mode.parse(self.mode)

    def validate(self) -> None:
        if self.mode not in LEVEL_MODES:
            raise InputError(
                f"mode must be one of {[m.value for m in LEVEL_MODES]} (both levels implement "
                f"them), got {self.mode.value!r}"
            )
        if self.repeats < 2:
            raise InputError(f"repeats must be >= 2, got {self.repeats}")

    def to_dict(self) -> dict:
        return asdict(self) | {"mode": self.mode.value}


def block(channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, channels, 5, padding=2),
        nn.BatchNorm2d(channels),
        nn.PReLU(),
        nn.Conv2d(channels, channels, 5, padding=2),
        nn.BatchNorm2d(channels),
    )


def _forward_backward(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> dict[str, np.ndarray]:
    model.zero_grad(set_to_none=True)
    y = model(x)
    (y * target).sum().backward()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    out = {"output": y.detach().double().numpy()}
    for i, conv in enumerate(convs):
        out[f"conv{i + 1}.weight.grad"] = conv.weight.grad.detach().double().numpy()
    return out


def run_granularity(cfg: GranularityConfig):
    """Return a DataFrame: granularity, quantity, sig_bits_median, sig_bits_mean, sig_bits_min."""
    import pandas as pd

    from harness.kernels import instrument_model
    from harness.metrics import significant_bits, summarize
    from harness.perturb import StochasticArithmetic

    cfg.validate()
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch_seed(cfg.seed):
        model = block(cfg.channels)
    x = torch.randn(cfg.batch, 1, cfg.size, cfg.size, generator=gen)
    target = torch.randn(cfg.batch, cfg.channels, cfg.size, cfg.size, generator=gen)
    reference = _forward_backward(copy.deepcopy(model), x, target)

    samples: dict[str, list[dict]] = {"op": [], "kernel": []}
    for r in tqdm(range(cfg.repeats), desc="granularity", leave=False):
        with StochasticArithmetic(cfg.mode, seed=r, include=CONV_BN_OPS):
            samples["op"].append(_forward_backward(copy.deepcopy(model), x, target))
        instrumented = instrument_model(model, mode=cfg.mode, seed=r)
        samples["kernel"].append(_forward_backward(instrumented, x, target))

    rows = []
    for level, runs in samples.items():
        for quantity, ref in reference.items():
            stack = np.stack([run[quantity] for run in runs])
            bits = summarize(np.minimum(significant_bits(stack, ref), 24))
            rows.append(
                {
                    "granularity": level,
                    "mode": cfg.mode.value,
                    "quantity": quantity,
                    "sig_bits_median": bits["median"],
                    "sig_bits_mean": bits["mean"],
                    "sig_bits_min": bits["min"],
                }
            )
    return pd.DataFrame(rows)
