"""Swap instrumented kernels into any model, and reseed them."""

from __future__ import annotations

import copy

import numpy as np
from torch import nn

from harness.enums import OnUnknown, parse_enum
from harness.errors import InputError
from harness.kernels.build import parse_mode
from harness.kernels.modules import InstrumentedBatchNorm2d, InstrumentedConv2d


def layer_seed(seed: int, index: int) -> int:
    """64-bit seed of the ``index``-th instrumented layer, derived from the model ``seed``.

    Distinct layers get independent streams (SeedSequence mixing of ``(seed, index)``).
    """
    words = np.random.SeedSequence([int(seed) & (2**64 - 1), int(index)]).generate_state(
        2, np.uint32
    )
    return int(words[0]) | (int(words[1]) << 32)


def _supported_conv(module: nn.Conv2d) -> bool:
    return module.groups == 1 and module.padding_mode == "zeros"


def _instrumented_copy(module: nn.Module, mode, seed: int, unsupported: OnUnknown):
    if isinstance(module, (InstrumentedConv2d, InstrumentedBatchNorm2d)):
        module.mode = mode
        module.reseed(seed)
        return module
    if type(module) is nn.Conv2d:
        if _supported_conv(module):
            return InstrumentedConv2d.from_conv(module, mode, seed)
        if unsupported is OnUnknown.RAISE:
            raise InputError(
                f"cannot instrument {module!r}: groups must be 1 and padding_mode 'zeros' "
                "(pass unsupported='skip' to leave such layers in IEEE torch)"
            )
        return None
    if type(module) is nn.BatchNorm2d:
        return InstrumentedBatchNorm2d.from_batchnorm(module, mode, seed)
    return None


def instrument_model(
    model: nn.Module,
    mode="sr",
    seed: int = 0,
    *,
    inplace: bool = False,
    unsupported: OnUnknown | str = OnUnknown.RAISE,
) -> nn.Module:
    """Replace every ``nn.Conv2d`` and ``nn.BatchNorm2d`` of ``model`` by its instrumented twin.

    Parameters
    ----------
    model : nn.Module
    mode : {"ieee", "sr", "rr"}
    seed : int
        Model seed; the i-th instrumented layer (in ``named_modules`` order) gets
        :func:`layer_seed` ``(seed, i)``.
    inplace : bool
        False (default): a deep copy is instrumented and returned, ``model`` is untouched.
        True: ``model`` itself is modified (its parameters stay the same tensors) and returned.
    unsupported : OnUnknown or {"raise", "skip"}
        Policy for convolutions the kernels do not cover (groups > 1, non-zero padding modes).

    Returns
    -------
    nn.Module
        The instrumented model; ``state_dict`` keys and values equal the original's.
    """
    mode = parse_mode(mode)
    unsupported = parse_enum(OnUnknown, unsupported, "unsupported")
    target = model if inplace else copy.deepcopy(model)
    index = 0
    for _parent_name, parent in list(target.named_modules()):
        for child_name, child in list(parent.named_children()):
            replacement = _instrumented_copy(child, mode, layer_seed(seed, index), unsupported)
            if replacement is None:
                continue
            setattr(parent, child_name, replacement)
            index += 1
    if isinstance(target, (nn.Conv2d, nn.BatchNorm2d)):
        replacement = _instrumented_copy(target, mode, layer_seed(seed, 0), unsupported)
        target = replacement if replacement is not None else target
    return target


def instrumented_layers(model: nn.Module) -> list[nn.Module]:
    """The instrumented layers of ``model`` in ``named_modules`` order."""
    kinds = (InstrumentedConv2d, InstrumentedBatchNorm2d)
    return [m for m in model.modules() if isinstance(m, kinds)]


def reseed(model: nn.Module, seed: int) -> None:
    """Restart every instrumented layer's streams from :func:`layer_seed` ``(seed, i)``."""
    for index, layer in enumerate(instrumented_layers(model)):
        layer.reseed(layer_seed(seed, index))
