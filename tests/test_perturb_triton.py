"""The fused Triton kernels against their reference definitions in ``harness.perturb.rounding``.

Each kernel draws its uniforms with ``tl.rand(seed, index)``; :func:`triton_kernels.uniforms`
returns them, so a kernel's result must be bitwise the reference function's on those uniforms,
over every value class of the CPU kernels' tests. Then, from the kernels' own outputs: results on
one of the two grid neighbours, exact values unchanged, unbiased over repeated draws, bitwise
reproducible for a key.

Without a GPU the kernels run under Triton's CPU interpreter (``TRITON_INTERPRET=1``, set by
``tests/conftest.py`` before Triton is imported); on a CUDA machine the ``cuda`` cases run the
compiled kernels. The interpreter is slow: tensors stay small (a few thousand elements).
"""

from __future__ import annotations

import math

import pytest
import torch

from harness.errors import InputError
from harness.perturb import StochasticArithmetic, TritonUse, rounding, triton_kernels
from harness.perturb.modes import SIGNIFICAND_BITS
from harness.perturb.rng import KeyedStreams

NO_INTERPRETER = (
    "the Triton kernels are compiled in this process (TRITON_INTERPRET was not 1 when Triton "
    "was imported; tests/conftest.py sets it where no CUDA device is present)"
)
pytestmark = [
    pytest.mark.skipif(not triton_kernels.IMPORTED, reason="needs triton (dev extra)"),
    # the interpreter evaluates with numpy, which warns on the inf/NaN inputs on purpose
    pytest.mark.filterwarnings("ignore::RuntimeWarning:triton.runtime.interpreter"),
]
DEVICES = [
    pytest.param(
        "cpu",
        id="interpret",
        marks=pytest.mark.skipif(not triton_kernels.INTERPRETED, reason=NO_INTERPRETER),
    ),
    pytest.param("cuda", id="cuda", marks=pytest.mark.cuda),
]
#: statistical tolerance: every mean lies within this many standard errors of its expectation
#: (the draws are fixed by the seeds, so a passing test passes every time)
Z = 5.0


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality, NaNs and the sign of zero included."""
    int_dtype = {8: torch.int64, 4: torch.int32, 2: torch.int16}[a.element_size()]
    return a.dtype == b.dtype and torch.equal(
        a.cpu().contiguous().view(int_dtype), b.cpu().contiguous().view(int_dtype)
    )


def _mismatches(got: torch.Tensor, want: torch.Tensor, x: torch.Tensor) -> list:
    int_dtype = {8: torch.int64, 4: torch.int32, 2: torch.int16}[got.element_size()]
    bad = got.cpu().view(int_dtype) != want.cpu().view(int_dtype)
    return list(zip(x.cpu()[bad][:5].tolist(), got.cpu()[bad][:5].tolist(),
                    want.cpu()[bad][:5].tolist(), strict=True))  # fmt: skip


def value_classes(dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Signed values of ``dtype``: normals over its whole exponent range, subnormals, +-0, +-inf,
    NaN, powers of two, the smallest normal and the values next to overflow."""
    g = torch.Generator().manual_seed(seed)
    info = torch.finfo(dtype)
    p = SIGNIFICAND_BITS[dtype]
    low, high = math.log(info.smallest_normal), math.log(info.max)
    normals = torch.exp(torch.empty(600, dtype=torch.float64).uniform_(low, high, generator=g))
    steps = torch.randint(1, 2 ** (p - 1), (60,), generator=g).double()
    subnormals = torch.cat([steps, torch.tensor([1.0, 2.0, 3.0])]) * (
        info.smallest_normal * info.eps
    )
    exponents = torch.arange(math.frexp(info.smallest_normal)[1] - 1, math.frexp(info.max)[1])
    powers = torch.ldexp(torch.ones(len(exponents), dtype=torch.float64), exponents)
    top = torch.tensor([info.max], dtype=dtype)
    below_top = torch.nextafter(top, torch.tensor([0.0], dtype=dtype)).double()
    edges = torch.tensor([info.max, info.smallest_normal, 1.0, 1.5, 3.0], dtype=torch.float64)
    mags = torch.cat([normals, subnormals, powers, below_top, edges]).to(dtype)
    signs = torch.where(torch.rand(len(mags), generator=g) < 0.5, -1.0, 1.0).to(dtype)
    specials = torch.tensor([0.0, -0.0] * 16 + [math.inf, -math.inf, math.nan], dtype=dtype)
    return torch.cat([mags * signs, -mags[-8:], specials])


def wide_value_classes(wide: torch.dtype, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Values of ``wide`` for rounding into ``dtype``: the target's classes, values between its
    grid points, beyond its range (round to inf), in its subnormal range, and below it."""
    g = torch.Generator().manual_seed(seed)
    target = value_classes(dtype, seed).to(wide)
    info = torch.finfo(dtype)
    between = target[torch.isfinite(target)] * (
        1 + torch.rand(target.isfinite().sum().item(), generator=g, dtype=torch.float64) * 2**-4
    ).to(wide)
    beyond = torch.tensor([info.max * 1.5, -info.max * 4, info.max * (1 + 2.0 ** -(1 + 12))])
    tiny = info.smallest_normal * info.eps
    subnormal = torch.rand(40, generator=g, dtype=torch.float64) * info.smallest_normal
    below = torch.tensor([tiny * 0.3, tiny * 0.5, tiny * 0.75, -tiny * 0.25, tiny * 1.5])
    extra = torch.cat([beyond, subnormal, -subnormal, below]).to(wide)
    return torch.cat([target, between, extra])


def _on(device: str, x: torch.Tensor) -> torch.Tensor:
    return x.to(device)


# ----------------------------------------------------------------------------- reference
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("t", [24, 12, 1])
def test_rr_equals_reference_on_its_uniforms(device, t):
    y = _on(device, value_classes(torch.float32))
    key = KeyedStreams(3).kernel_seed(5)
    got = y.clone()
    assert triton_kernels.random_rounding_(got, t, key)
    u = triton_kernels.uniforms(y.numel(), key, device)
    want = rounding.random_rounding(y, t, u)
    assert _same(got, want), _mismatches(got, want, y)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_ud_equals_reference_on_its_uniforms(device, dtype):
    y = _on(device, value_classes(dtype))
    key = KeyedStreams(4).kernel_seed(2)
    got = y.clone()
    assert triton_kernels.up_down_(got, key)
    u = triton_kernels.uniforms(y.numel(), key, device)
    want = rounding.up_down(y, u < 0.5)
    assert _same(got, want), _mismatches(got, want, y)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("wide", "dtype"), triton_kernels.SR_PAIRS)
@pytest.mark.parametrize("t", ["p", "p-1", 3])
def test_sr_equals_reference_on_its_uniforms(device, wide, dtype, t):
    t = {"p": SIGNIFICAND_BITS[dtype], "p-1": SIGNIFICAND_BITS[dtype] - 1}.get(t, t)
    x = _on(device, wide_value_classes(wide, dtype))
    key = KeyedStreams(5).kernel_seed(9)
    got = triton_kernels.stochastic_rounding(x, dtype, t, key)
    assert got is not None and got.dtype == dtype and got.device == x.device
    u = triton_kernels.uniforms(x.numel(), key, device)
    want = rounding.stochastic_rounding(x, dtype, t, u)
    assert _same(got, want), _mismatches(got, want, x)


@pytest.mark.parametrize("device", DEVICES)
def test_uniforms_cover_the_unit_interval_evenly(device):
    u = triton_kernels.uniforms(1 << 16, 77, device).double().cpu()
    assert u.min() >= 0 and u.max() <= 1
    counts = torch.histc(u, bins=32, min=0, max=1)
    expected = u.numel() / 32
    assert ((counts - expected) ** 2 / expected).sum() < 70  # chi2, 31 dof: p ~ 1e-4


# ----------------------------------------------------------------------------- properties
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("wide", "dtype"), triton_kernels.SR_PAIRS)
@pytest.mark.parametrize("t", ["p", 4])
def test_sr_neighbours_exact_values_and_unbiased(device, wide, dtype, t):
    t = SIGNIFICAND_BITS[dtype] if t == "p" else t
    g = torch.Generator().manual_seed(1)
    # 24 normal magnitudes over a few binades of the target; each repeated `draws` times
    x = (torch.rand(24, generator=g, dtype=torch.float64) * 6 + 0.01).to(wide)
    x = x * torch.where(torch.arange(24) % 2 == 0, 1.0, -1.0).to(wide)
    draws = 2000
    got = triton_kernels.stochastic_rounding(_on(device, x.repeat(draws)), dtype, t, 41)
    got = got.double().cpu().view(draws, -1)
    x64 = x.double()
    spacing = torch.ldexp(torch.ones_like(x64), torch.frexp(x64).exponent - t)
    lo = torch.floor(x64 / spacing) * spacing
    assert torch.all((got == lo) | (got == lo + spacing))
    fraction = (x64 - lo) / spacing
    sd = spacing * torch.sqrt(fraction * (1 - fraction) / draws)
    assert torch.all((got.mean(0) - x64).abs() <= Z * sd + 1e-12 * spacing)
    # exact: values on the t-bit grid come back unchanged, whatever the draws
    exact = lo[fraction > 0] if t < SIGNIFICAND_BITS[dtype] else x64.to(dtype).double()
    exact = _on(device, exact.to(wide).repeat(50))
    assert _same(triton_kernels.stochastic_rounding(exact, dtype, t, 3), exact.to(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("t", [24, 10])
def test_rr_bounded_and_unbiased(device, t):
    g = torch.Generator().manual_seed(2)
    y = (torch.rand(16, generator=g) * 8 + 0.1) * torch.where(torch.arange(16) % 2 == 0, 1, -1)
    draws = 2000
    got = y.repeat(draws).to(device)
    assert triton_kernels.random_rounding_(got, t, 17)
    y64 = y.double()
    noise = 2.0 ** (torch.frexp(y64).exponent - t)  # 2^(e - t): xi's unit
    rel = (got.double().cpu().view(draws, -1) - y64) / noise
    half_ulp = 2.0 ** (torch.frexp(y64).exponent - 25) / noise
    assert torch.all(rel.abs() <= 0.5 + half_ulp)
    # xi ~ U(-1/2, 1/2): mean 0, sd 1/sqrt(12), plus round-to-nearest's (unbiased) error
    assert torch.all(rel.mean(0).abs() <= Z * (1 / math.sqrt(12) + half_ulp) / math.sqrt(draws))
    if t < 24:
        assert torch.all(rel.std(0) > 0.25)  # the noise is really there
    specials = torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan], device=device)
    moved = specials.clone()
    triton_kernels.random_rounding_(moved, t, 5)
    assert _same(moved, specials)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_ud_one_ulp_half_up(device, dtype):
    y = _on(device, value_classes(dtype))
    got = y.clone()
    triton_kernels.up_down_(got, 8)
    int_dtype = torch.int32 if dtype == torch.float32 else torch.int16
    step = (got.view(int_dtype).long() - y.view(int_dtype).long()).cpu()
    y_cpu = y.cpu()
    movable = torch.isfinite(y_cpu) & (y_cpu != 0)
    assert torch.all(step[movable].abs() == 1) and torch.all(step[~movable] == 0)
    up = (got.cpu().double() > y_cpu.double())[movable].double()
    assert abs(up.mean().item() - 0.5) <= Z * 0.5 / math.sqrt(up.numel())


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("device", DEVICES)
def test_bitwise_reproducible_for_a_key_and_different_for_another(device):
    y = _on(device, value_classes(torch.float32))
    wide = _on(device, wide_value_classes(torch.float64, torch.float32))
    key, other = KeyedStreams(6).kernel_seed(0), KeyedStreams(6).kernel_seed(1)

    def run(seed):
        rr, ud = y.clone(), y.to(torch.float16)
        triton_kernels.random_rounding_(rr, 12, seed)
        triton_kernels.up_down_(ud, seed)
        return rr, ud, triton_kernels.stochastic_rounding(wide, torch.float32, 10, seed)

    first, again, changed = run(key), run(key), run(other)
    assert all(_same(a, b) for a, b in zip(first, again, strict=True))
    assert not any(_same(a, b) for a, b in zip(first, changed, strict=True))


@pytest.mark.parametrize("device", DEVICES)
def test_unsupported_inputs_are_left_to_the_fallback(device):
    y = _on(device, torch.ones(8, 8))
    assert not triton_kernels.random_rounding_(y.t(), 12, 1)  # non-contiguous
    assert not triton_kernels.random_rounding_(y.half(), 8, 1)  # rr fp16: torch fallback
    assert not triton_kernels.up_down_(y.double(), 1)
    assert triton_kernels.stochastic_rounding(y, torch.bfloat16, 8, 1) is None
    assert triton_kernels.stochastic_rounding(y.t(), torch.float16, 8, 1) is None


# ----------------------------------------------------------------------------- engine
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["ud", "sr", "rr"])
def test_engine_sends_tensors_through_the_kernels(device, mode):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, generator=g).to(device), torch.randn(300, generator=g).to(device)
    wide = mode != "ud" and mode != "rr"
    use = TritonUse.INTERPRET if device == "cpu" else TritonUse.CUDA
    with StochasticArithmetic(mode, precision=12, seed=4, triton=use.value, wide=wide) as sa:
        got = a * b
    assert sa.counter == 1 and sa.triton is use
    key = KeyedStreams(4).kernel_seed(0)
    u = triton_kernels.uniforms(300, key, device)
    if mode == "ud":
        want = rounding.up_down(a * b, u < 0.5)
    elif mode == "rr":
        want = rounding.random_rounding(a * b, 12, u)
    else:
        want = rounding.stochastic_rounding(a.double() * b.double(), torch.float32, 12, u)
    assert _same(got, want)
    with StochasticArithmetic(mode, precision=12, seed=4, triton="off", wide=wide):
        assert not _same(a * b, got)  # the other paths draw other random numbers


@pytest.mark.skipif(not triton_kernels.INTERPRETED, reason=NO_INTERPRETER)
def test_engine_training_step_under_the_interpreter_is_reproducible():
    from test_perturb_engine import training_step

    first = training_step("ud", 0, "cpu", triton="interpret")
    again = training_step("ud", 0, "cpu", triton="interpret")
    plain = training_step(None, 0, "cpu")
    assert all(torch.equal(x, z) for x, z in zip(first, again, strict=True))
    assert not torch.equal(first[0], plain[0])
    torch.testing.assert_close(first[0], plain[0], atol=5e-3, rtol=0)  # Adam: lr 1e-3 steps


def test_triton_option_is_parsed_and_checked(monkeypatch):
    assert TritonUse.parse("Interpret") is TritonUse.INTERPRET
    assert TritonUse.parse(False) is TritonUse.OFF
    with pytest.raises(InputError, match=r"triton must be one of \['off', 'cuda', 'interpret'\]"):
        StochasticArithmetic("sr", triton="fast")
    monkeypatch.setattr(triton_kernels, "INTERPRETED", False)
    with pytest.raises(InputError, match="TRITON_INTERPRET=1"):
        StochasticArithmetic("sr", triton="interpret")


# ----------------------------------------------------------------------------- compiled for sm_90
def test_kernels_compile_for_sm90_and_round_as_their_references():
    """Every launch variant compiled for sm_90 (no GPU needed), and its PTX checked: no fma
    contraction, IEEE divisions, no flushing of subnormals (the floor of a non-negative quotient,
    ``cvt.rmi.ftz``, is the one exception: a subnormal quotient floors to 0 either way)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("triton_ptx.py")
    root = str(script.parent.parent)  # this checkout's harness, not an installed one
    path = os.pathsep.join(
        [root] + ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ else [])
    )
    env = {**os.environ, "TRITON_INTERPRET": "0", "PYTHONPATH": path}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env=env, cwd=script.parent.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report) == 2 * (2 + len(triton_kernels._UD_LAYOUT) + len(triton_kernels.SR_PAIRS))
    for name, ops in report.items():
        assert not [op for op in ops if op.startswith("fma")], (name, ops)
        assert not [op for op in ops if op.startswith("div") and not op.startswith("div.rn")], name
        assert not [op for op in ops if "ftz" in op and op != "cvt.rmi.ftz.f32.f32"], (name, ops)
    assert all("div.rn.f64" in ops for name, ops in report.items() if name.startswith("sr-float64"))
    assert all("div.rn.f32" in ops for name, ops in report.items() if name.startswith("sr-float32"))
