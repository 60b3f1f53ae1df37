"""Drop-in modules, instrument_model, reseeding, and the C sources as plain C99."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import torch
from torch import nn

from harness.errors import InputError
from harness.kernels import (
    InstrumentedBatchNorm2d,
    InstrumentedConv2d,
    instrument_model,
    instrumented_layers,
    load_extension,
    reseed,
)
from harness.kernels.build import SOURCE_DIR


@pytest.fixture(scope="module", autouse=True)
def extensions():
    return [load_extension(mode) for mode in ("ieee", "sr")]


def _model(dtype=torch.float64):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 3, 3, padding="same", bias=False), nn.BatchNorm2d(3)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return model.to(dtype)


def test_modules_keep_the_state_dict_of_torch_modules():
    assert InstrumentedConv2d(3, 5, 3).state_dict().keys() == nn.Conv2d(3, 5, 3).state_dict().keys()
    assert InstrumentedBatchNorm2d(4).state_dict().keys() == nn.BatchNorm2d(4).state_dict().keys()
    conv = nn.Conv2d(3, 5, 3)
    twin = InstrumentedConv2d.from_conv(conv, mode="sr", seed=1)
    assert twin.weight is conv.weight and twin.bias is conv.bias


def test_ieee_instrumented_model_matches_original_and_leaves_it_untouched():
    model = _model()
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    instrumented = instrument_model(model, mode="ieee", seed=0)
    assert len(instrumented_layers(instrumented)) == 4
    assert not instrumented_layers(model)
    torch.testing.assert_close(instrumented(x), model(x), rtol=1e-12, atol=1e-12)
    # both ran in training mode and updated their own running statistics identically
    for key, value in model.state_dict().items():
        torch.testing.assert_close(instrumented.state_dict()[key], value)
        if "running" in key:
            assert not torch.equal(value, before[key])
    model.eval()
    instrumented.eval()
    torch.testing.assert_close(instrumented(x), model(x), rtol=1e-12, atol=1e-12)


def test_sr_model_trains_a_step_and_reseeds_reproducibly():
    model = instrument_model(_model(torch.float32), mode="sr", seed=3)
    x, target = torch.randn(4, 2, 6, 6), torch.randn(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    weight_before = model[0].weight.detach().clone()
    loss = nn.functional.mse_loss(model(x), target)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert not torch.equal(model[0].weight, weight_before)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())

    model.eval()
    reseed(model, 10)
    first = model(x)
    reseed(model, 10)
    assert torch.equal(model(x), first)
    reseed(model, 11)
    assert not torch.equal(model(x), first)


def test_inplace_instrumentation_modifies_the_model():
    model = _model()
    out = instrument_model(model, mode="sr", seed=0, inplace=True)
    assert out is model and isinstance(model[0], InstrumentedConv2d)


def test_unsupported_convolution_policy():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 4, 1))
    with pytest.raises(InputError, match="groups"):
        instrument_model(model, mode="sr")
    skipped = instrument_model(model, mode="sr", unsupported="skip")
    assert type(skipped[0]) is nn.Conv2d and isinstance(skipped[1], InstrumentedConv2d)
    with pytest.raises(InputError, match="unsupported"):
        instrument_model(model, unsupported="ignore")
    with pytest.raises(InputError, match="mode"):
        instrument_model(model, mode="ud")
    with pytest.raises(InputError, match="groups=1"):
        InstrumentedConv2d(4, 4, 3, groups=2)


@pytest.mark.parametrize("mode", ["IEEE", "SR", "RR"])
def test_cpu_kernels_are_plain_c99(mode, tmp_path):
    compiler = shutil.which("gcc") or shutil.which("cc")
    assert compiler, "a C compiler is required to build the kernels"
    cmd = [compiler, "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-fopenmp"]
    cmd += [f"-DHARNESS_MODE_{mode}", str(SOURCE_DIR / "kernels_cpu.c")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
