"""SeedPlan derivation/round trip, seed_everything and deterministic_algorithms."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from harness.errors import InputError
from harness.perturb.seeds import FACTORS, SeedPlan, deterministic_algorithms, seed_everything


def test_factors_not_varied_keep_member_zero_seeds():
    zero = SeedPlan.derive(member=0, base_seed=5, vary={"data"})
    three = SeedPlan.derive(member=3, base_seed=5, vary={"data"})
    assert three.data != zero.data
    assert (three.init, three.augment, three.mca) == (zero.init, zero.augment, zero.mca)


def test_all_varies_every_factor_and_seeds_are_distinct():
    plans = [SeedPlan.derive(member=m, base_seed=0, vary="all") for m in range(20)]
    for factor in FACTORS:
        assert len({p.seed(factor) for p in plans}) == 20
    assert len({plans[1].seed(f) for f in FACTORS}) == len(FACTORS)
    assert SeedPlan.derive(2, 1).init != SeedPlan.derive(2, 0).init


def test_round_trip_and_generator():
    plan = SeedPlan.derive(member=4, base_seed=11, vary={"init", "mca"})
    record = json.loads(json.dumps(plan.to_dict()))
    assert SeedPlan.from_dict(record) == plan
    a = torch.rand(3, generator=plan.generator("data"))
    b = torch.rand(3, generator=plan.generator("data"))
    assert torch.equal(a, b)


def test_invalid_inputs():
    with pytest.raises(InputError, match="vary"):
        SeedPlan.derive(1, vary={"weights"})
    with pytest.raises(InputError, match="member"):
        SeedPlan.derive(-1)
    with pytest.raises(InputError, match="missing"):
        SeedPlan.from_dict({"member": 1})
    with pytest.raises(InputError, match="factor"):
        SeedPlan.derive(1).seed("noise")


def test_seed_everything_reproduces_python_numpy_torch():
    def draw():
        return random.random(), np.random.random(), torch.rand(1).item()  # noqa: NPY002

    seed_everything(42)
    first = draw()
    seed_everything(42)
    assert draw() == first
    with pytest.raises(InputError, match="seed"):
        seed_everything(-3)


def test_deterministic_algorithms_restored_even_on_error():
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    with pytest.raises(RuntimeError, match="inside"):
        with deterministic_algorithms(True):
            assert torch.are_deterministic_algorithms_enabled()
            assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
            assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
            raise RuntimeError("inside")
    after = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    assert after == before
