"""StochasticArithmetic: conformance over every mode, semantics, RNG isolation, training step."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from harness.errors import InputError
from harness.perturb import Mode, Policy, StochasticArithmetic

ALL_MODES = [m.value for m in Mode]
PERTURBING = [m for m in ALL_MODES if m != "ieee"]


def _inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 32, generator=g).to(dtype)
    b = torch.randn(32, 16, generator=g).to(dtype)
    return a, b


def _compute(a, b):
    return torch.tanh(a @ b).sum(dim=0) / 3.0


def _run(mode, seed, dtype=torch.float32, precision=18, **kwargs):
    a, b = _inputs(dtype)
    with StochasticArithmetic(mode, precision=precision, seed=seed, **kwargs) as sa:
        out = _compute(a, b)
    return out, sa


# -- conformance suite: every registered mode through the same checks --------------------------
@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_conformance_same_seed_same_output_dtype_device_kept(mode, dtype):
    first, sa = _run(mode, 7, dtype)
    second, _ = _run(mode, 7, dtype)
    assert torch.equal(first, second)
    assert first.dtype == dtype and first.device.type == "cpu"
    json.loads(sa.history_json())


@pytest.mark.parametrize("mode", ALL_MODES)
def test_conformance_different_seeds(mode):
    first, _ = _run(mode, 1)
    second, _ = _run(mode, 2)
    reference = _compute(*_inputs())
    if mode == "ieee":
        assert torch.equal(first, second) and torch.equal(first, reference)
    else:
        assert not torch.equal(first, second)
        torch.testing.assert_close(first, reference, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_conformance_history_serialisable(mode):
    _, sa = _run(mode, 3, history=True)
    record = json.loads(sa.history_json())
    assert record["mode"] == mode
    assert record["perturbed_tensors"] == len(record["history"]) == sa.counter
    if mode != "ieee":
        assert record["op_counts"].get("aten.mm") == 1
        assert [c for c, _ in record["history"]] == list(range(sa.counter))


@pytest.mark.parametrize("mode", ALL_MODES)
def test_conformance_exact_operations(mode):
    """Exact selections/copies are never perturbed; exact arithmetic stays exact except ud."""
    x = torch.tensor([3.0, 5.0, 6.0, 7.0, 9.0, 11.0])  # products are not powers of two
    with StochasticArithmetic(mode, seed=0):
        picked = torch.relu(x).max() + 0.0
        doubled = x * 2.0
    assert picked.item() == 11.0 if mode != "ud" else abs(picked.item() - 11.0) <= 2**-19
    # rr at t = p adds less than half an ulp, so exact results off powers of two stay exact
    if mode in ("ieee", "sr", "rr"):
        assert torch.equal(doubled, x * 2.0)
    else:
        assert not torch.equal(doubled, x * 2.0)


# -- semantics --------------------------------------------------------------------------------
def test_ieee_is_bitwise_identical_and_counts_nothing():
    out, sa = _run("ieee", 0)
    assert torch.equal(out, _compute(*_inputs()))
    assert sa.counter == 0


def test_ud_moves_each_result_one_ulp():
    a = torch.linspace(1.0, 2.0, 100)
    b = torch.full((100,), 1.0 / 3.0)
    with StochasticArithmetic("ud", seed=5):
        got = a * b
    exact = a * b
    steps = got.view(torch.int32) - exact.view(torch.int32)
    assert torch.all(steps.abs() == 1)


def test_rr_relative_perturbation_bounded():
    a, b = _inputs()
    reference = (a * b[:, :1].T[:, :32]).double()
    with StochasticArithmetic("rr", precision=10, seed=0):
        got = a * b[:, :1].T[:, :32]
    relative = ((got.double() - reference) / reference).abs()
    assert 0 < relative.max().item() <= 2.0**-9


def test_sr_result_is_a_neighbour_of_the_exact_value():
    a, b = _inputs()
    exact = a.double() @ b.double()
    with StochasticArithmetic("sr", seed=0):
        got = a @ b
    lo = exact.float()
    below = torch.where(lo.double() > exact, torch.nextafter(lo, torch.tensor(-math.inf)), lo)
    above = torch.where(lo.double() < exact, torch.nextafter(lo, torch.tensor(math.inf)), lo)
    assert torch.all((got == below) | (got == above))


def test_in_place_and_out_variants_are_perturbed():
    x = torch.ones(1000)
    y = torch.full((1000,), 1.0 / 3.0)
    out = torch.empty(1000)
    with StochasticArithmetic("sr", seed=0) as sa:
        x.add_(y)
        torch.mul(y, 3.0, out=out)
    assert len(torch.unique(x)) == 2  # 4/3 rounded up or down
    assert len(torch.unique(out)) <= 2 and sa.op_counts["aten.add_"] == 1
    assert sa.op_counts["aten.mul"] == 1


def test_views_integers_and_rng_untouched():
    x = torch.randn(4, 6)
    idx = torch.arange(6)
    with StochasticArithmetic("ud", seed=0) as sa:
        v = x.view(24).reshape(6, 4).t()
        j = idx * 2 + 1
        c = x.clone()
    assert torch.equal(v, x.view(24).reshape(6, 4).t())
    assert torch.equal(j, idx * 2 + 1) and torch.equal(c, x)
    assert sa.counter == 0


def test_include_and_exclude():
    a, b = _inputs()
    with StochasticArithmetic("ud", seed=0, include=["aten.mm"]) as only_mm:
        _compute(a, b)
    assert set(only_mm.op_counts) == {"aten.mm"}
    with StochasticArithmetic("ud", seed=0, exclude=["aten.mm", "aten.tanh"]) as no_mm:
        _compute(a, b)
    assert "aten.mm" not in no_mm.op_counts and no_mm.counter > 0
    with pytest.raises(InputError, match="include"):
        StochasticArithmetic("rr", include=["aten.not_an_op"])


def test_unknown_op_policy():
    x = torch.rand(50) + 0.5
    with StochasticArithmetic("ud", seed=0, unknown_ops=Policy.SKIP) as skip:
        y = torch.erf(x)
    assert torch.equal(y, torch.erf(x)) and "aten.erf" in skip.unknown_seen
    with StochasticArithmetic("ud", seed=0, unknown_ops="perturb"):
        z = torch.erf(x)
    assert not torch.equal(z, torch.erf(x))
    with pytest.raises(InputError, match="unknown_ops"):
        StochasticArithmetic("rr", unknown_ops="maybe")


def test_bad_parameters_raise_input_error():
    with pytest.raises(InputError, match="mode"):
        StochasticArithmetic("nearest")
    with pytest.raises(InputError, match="seed"):
        StochasticArithmetic("rr", seed=-1)
    with pytest.raises(InputError, match="precision"):
        StochasticArithmetic("rr", precision=0)


def test_global_rng_untouched():
    a, b = _inputs()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for mode in PERTURBING:
        with StochasticArithmetic(mode, seed=9):
            _compute(a, b)
    assert torch.equal(torch.get_rng_state(), state)
    after = torch.rand(5)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(5))


def test_state_restored_on_error_and_reentrant():
    sa = StochasticArithmetic("ud", seed=0)
    with pytest.raises(RuntimeError, match="boom"):
        with sa:
            raise RuntimeError("boom")
    assert _get_current_dispatch_mode() is None
    x = torch.full((10,), 1.0 / 3.0)
    assert torch.equal(x * 3.0, x * 3.0)
    with sa:
        with sa:  # re-entering the same context does not perturb twice
            y = x * 3.0
        assert _get_current_dispatch_mode() is sa
    assert _get_current_dispatch_mode() is None
    steps = y.view(torch.int32) - (x * 3.0).view(torch.int32)
    assert torch.all(steps.abs() == 1)
    with StochasticArithmetic("rr"):
        with pytest.raises(InputError, match="nested"):
            with StochasticArithmetic("sr"):
                pass
    for outer, inner in (("ieee", "rr"), ("rr", "ieee")):  # ieee installs no dispatch mode
        with StochasticArithmetic(outer):
            with pytest.raises(InputError, match="nested"):
                with StochasticArithmetic(inner):
                    pass
    with StochasticArithmetic("sr"):  # every context was left
        pass


def test_narrowing_conversion_is_rounded_widening_is_not():
    x = torch.full((2000,), 1.0 + 2**-10, dtype=torch.float32)  # halfway between bf16 values
    with StochasticArithmetic("sr", seed=0):
        narrowed = x.to(torch.bfloat16)
        widened = x.to(torch.float64)
    assert set(narrowed.float().unique().tolist()) == {1.0, 1.0078125}
    assert abs(narrowed.float().mean().item() - (1.0 + 2**-10)) < 2e-4
    assert torch.equal(widened, x.double())


# -- stagnation: harmonic series in fp16 -------------------------------------------------------
def _harmonic(mode, seed, terms):
    total = torch.zeros((), dtype=torch.float16)
    with StochasticArithmetic(mode, seed=seed):
        for term in terms:
            total = total + term
    return float(total)


def test_harmonic_series_stagnates_under_rn_and_ud_but_not_sr():
    n = 4000
    terms = [torch.tensor(1.0 / i, dtype=torch.float16) for i in range(1, n + 1)]
    exact = sum(float(t) for t in terms)  # fp64 sum of the fp16 terms
    rn = _harmonic("ieee", 0, terms)
    ud = _harmonic("ud", 0, terms)
    seeds = 3
    sr = sum(_harmonic("sr", s, terms) for s in range(seeds)) / seeds
    # each SR addition has variance <= ulp * term, ulp <= 2^-7 below 16: a 5-sigma bound
    tolerance = 5 * math.sqrt(2.0**-7 * exact / seeds)
    assert exact - rn > 1.5
    assert exact - ud > 1.0
    assert abs(sr - exact) < tolerance < exact - rn


# -- one full training step of a small CNN ---------------------------------------------------
class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.PReLU(8), nn.MaxPool2d(2)
        )
        self.head = nn.Linear(8 * 4 * 4, 4)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def training_step(mode, seed, device="cpu", **engine_kwargs):
    """One forward/backward/Adam step; returns the updated parameters and the loss."""
    torch.manual_seed(0)
    model = SmallCNN().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 8, 8, generator=g).to(device)
    y = torch.randint(0, 4, (4,), generator=g).to(device)

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    if mode is None:
        loss = step()
    else:
        with StochasticArithmetic(mode, seed=seed, **engine_kwargs):  # default t = p
            loss = step()
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    buffers = torch.cat([b.detach().flatten().double() for b in model.buffers()])
    return params, buffers, loss


@pytest.mark.parametrize("mode", ALL_MODES)
def test_training_step_cpu(mode):
    plain = training_step(None, 0)
    first = training_step(mode, 0)
    again = training_step(mode, 0)
    other = training_step(mode, 1)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    if mode == "ieee":
        assert all(torch.equal(a, b) for a, b in zip(first, plain, strict=True))
    else:
        assert not torch.equal(first[0], other[0])
        assert torch.isfinite(first[0]).all()
        torch.testing.assert_close(first[0], plain[0], atol=5e-3, rtol=0)


def test_keyed_streams_reproducible_and_distinct():
    from harness.perturb.rng import KeyedStreams

    like = torch.empty(1000)
    a, b = KeyedStreams(1), KeyedStreams(1)
    assert torch.equal(a.centred_uniform(like, 5), b.centred_uniform(like, 5))
    assert not torch.equal(a.centred_uniform(like, 5), a.centred_uniform(like, 6))
    assert torch.equal(a.bits(like, 2), b.bits(like, 2))
    assert torch.equal(a.uniform(like, 2), b.uniform(like, 2))
    xi = a.centred_uniform(torch.empty(20000, dtype=torch.float64), 0)
    assert -0.5 <= xi.min() and xi.max() < 0.5 and abs(xi.mean().item()) < 0.01
    share = a.bits(torch.empty(20000), 3).double().mean().item()
    assert abs(share - 0.5) < 0.02


def test_rr_rounds_the_exact_result_at_full_precision():
    """1.5 + 2^-25 lies a quarter ulp above 1.5 in fp32. rr (t = 24) of the exact sum rounds up when
    U(-1/2, 1/2) * 2^-23 > 2^-25, i.e. with probability 1/4 (as stochastic rounding would);
    applied to the rounded sum (wide=False) it never moves."""
    n = 40_000
    x = torch.full((n,), 1.5)
    with StochasticArithmetic("rr", seed=5):
        y = x + 2.0**-25
    up = (y == 1.5 + 2.0**-23).float().mean().item()
    assert set(torch.unique(y).tolist()) <= {1.5, 1.5 + 2.0**-23}
    assert abs(up - 0.25) < 5 * (0.25 * 0.75 / n) ** 0.5
    with StochasticArithmetic("rr", seed=5, wide=False):
        z = x + 2.0**-25
    assert torch.equal(z, x)


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("mode", ["rr", "sr", "ud"])
def test_batchnorm_running_statistics_are_updated(mode, wide):
    """native_batch_norm writes running_mean/var without declaring it in its schema; under every
    mode they must move as in plain torch (up to the perturbation), not stay at 0 and 1."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 5, 5, generator=gen) * 2 + 1.5
    plain, perturbed = torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    plain(x)
    with StochasticArithmetic(mode=mode, seed=1, wide=wide):
        perturbed(x)
    for name in ("running_mean", "running_var"):
        expected, got = getattr(plain, name), getattr(perturbed, name)
        assert not torch.equal(got, torch.zeros(3) if name == "running_mean" else torch.ones(3))
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
