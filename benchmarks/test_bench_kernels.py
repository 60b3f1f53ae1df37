"""Throughput and significant bits of conv2d / batchnorm2d: torch native vs harness kernels.

Run (CUDA cases are marked ``cuda`` and skip without a GPU; ``-m cuda`` selects them)::

    pytest benchmarks/test_bench_kernels.py --benchmark-json out.json

Each case records in ``extra_info``: GFLOP/s and GB/s (from the mean time), significant bits of
the float32 output against a float64 torch reference (``significantdigits``, basis 2; General
method = -log2 of the largest relative error over the samples, and CNH for stochastic modes), the
implementation settings and the environment fingerprint.

FLOPs: conv2d ``2 N K P Q C R S``; batchnorm2d training forward ``8 N C H W`` (sum, centre, square,
normalise, scale-shift). Bytes: the minimal traffic, inputs + weights read once, output written
once (conv2d) or ``x`` read twice and ``y`` written once (batchnorm2d).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.fingerprint import fingerprint
from harness.kernels import KernelStream, batch_norm2d, conv2d, load_extension

SAMPLES = 4  # outputs per implementation for significant bits (different seeds where stochastic)


@dataclass(frozen=True)
class ConvCase:
    name: str
    n: int
    c: int
    hw: int
    k: int
    kernel: int
    device: str
    sig_batch: int  # images used for significant bits (the fp64 reference is costly)

    @property
    def padding(self) -> int:
        return self.kernel // 2


CONV_CASES = [
    ConvCase("cpu-small-3x3", 2, 8, 32, 8, 3, "cpu", 2),
    ConvCase("cpu-16ch-5x5", 2, 16, 32, 16, 5, "cpu", 2),
    # the FastSurfer shape first: within a time limit on the GPU it is the case the goals need
    ConvCase("cuda-fastsurfer-64x64-5x5-256-b16", 16, 64, 256, 64, 5, "cuda", 1),
    ConvCase("cuda-32ch-3x3", 16, 32, 128, 32, 3, "cuda", 1),
]


def _cases(cases, device_of, name_of):
    """pytest params of ``cases``, the CUDA ones marked ``cuda``."""
    return [
        pytest.param(c, id=name_of(c), marks=[pytest.mark.cuda] if device_of(c) == "cuda" else [])
        for c in cases
    ]


# (implementation, mode, torch settings) -- "torch" means oneDNN on the CPU, cuDNN on CUDA
IMPLEMENTATIONS = [
    ("torch", None, {}),
    ("torch", None, {"tf32": True}),
    ("torch", None, {"cudnn_benchmark": True}),
    ("harness", "ieee", {}),
    ("harness", "sr", {}),
    ("harness", "rr", {}),
]


def _impl_id(impl) -> str:
    name, mode, settings = impl
    return "-".join([name] + ([mode] if mode else []) + sorted(settings))


def _skip_if_unavailable(device: str, settings: dict) -> None:
    if device == "cpu" and settings:
        pytest.skip("TF32 / cuDNN settings only apply on CUDA")


@contextlib.contextmanager
def _torch_settings(tf32: bool = False, cudnn_benchmark: bool = False):
    """TF32 and cuDNN algorithm choice (deterministic unless cudnn_benchmark), restored after."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cudnn.deterministic = not cudnn_benchmark
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic,
        ) = saved


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def significant_bits(
    samples: list[torch.Tensor], reference: torch.Tensor, stochastic: bool
) -> dict:
    """Significant bits of float32 ``samples`` against the float64 ``reference`` (same shape)."""
    from significantdigits import Method, significant_digits

    stack = np.stack([s.detach().double().cpu().numpy().ravel() for s in samples])
    ref = reference.detach().cpu().numpy().ravel()
    keep = ref != 0
    stack, ref = stack[:, keep], ref[keep]
    general = np.asarray(significant_digits(stack, reference=ref, basis=2, method=Method.General))
    out = {
        "sig_bits_mean": float(np.mean(general)),
        "sig_bits_median": float(np.median(general)),
        "sig_bits_min": float(np.min(general)),
        "sig_bits_method": "general",
        "sig_bits_samples": len(samples),
    }
    if stochastic:
        cnh = np.asarray(significant_digits(stack, reference=ref, basis=2, method=Method.CNH))
        out["sig_bits_cnh_mean"] = float(np.mean(cnh[np.isfinite(cnh)]))
    return out


def _runner(impl, forward):
    """Return f(seed) -> output for an implementation; ``forward(mode, stream)`` runs ours."""
    name, mode, settings = impl
    if name == "torch":
        return lambda seed: forward(None, None)
    load_extension(mode)  # build outside the timed region
    return lambda seed: forward(mode, KernelStream(seed))


@pytest.fixture(scope="module")
def environment():
    return fingerprint()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=_impl_id)
@pytest.mark.parametrize("case", _cases(CONV_CASES, lambda c: c.device, lambda c: c.name))
def test_conv2d_forward(benchmark, case, impl, environment):
    name, mode, settings = impl
    _skip_if_unavailable(case.device, settings)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(case.n, case.c, case.hw, case.hw, generator=gen).to(case.device)
    w = (torch.randn(case.k, case.c, case.kernel, case.kernel, generator=gen) * 0.1).to(case.device)

    def forward(mode, stream, x=x):
        if mode is None:
            return F.conv2d(x, w, padding=case.padding)
        return conv2d(x, w, padding=case.padding, mode=mode, stream=stream)

    run = _runner(impl, forward)
    with _torch_settings(**settings):

        def timed():
            out = run(0)
            _sync(case.device)
            return out

        rounds = 3 if case.device == "cpu" else 10
        benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=1)
        xs = x[: case.sig_batch]
        samples = [forward_sub(run, forward, mode, xs, seed) for seed in range(SAMPLES)]
    reference = F.conv2d(xs.double(), w.double(), padding=case.padding)
    seconds = benchmark.stats.stats.mean
    out_numel = case.n * case.k * case.hw * case.hw
    flops = 2.0 * out_numel * case.c * case.kernel**2
    nbytes = 4.0 * (x.numel() + w.numel() + out_numel)
    benchmark.extra_info.update(
        {
            "op": "conv2d_forward",
            "case": case.name,
            "shape": _conv_shape(case),
            "device": case.device,
            "implementation": name,
            "mode": mode or "native",
            "tf32": bool(settings.get("tf32", False)),
            "cudnn_benchmark": bool(settings.get("cudnn_benchmark", False)),
            "gflops": flops / seconds / 1e9,
            "gbytes_per_s": nbytes / seconds / 1e9,
            "environment": environment,
            **significant_bits(samples, reference, stochastic=mode in ("sr", "rr")),
        }
    )


def forward_sub(run, forward, mode, xs, seed):
    """The same implementation applied to the sub-batch used for significant bits."""
    if mode is None:
        return forward(None, None, x=xs)
    return forward(mode, KernelStream(seed), x=xs)


BN_CASES = [
    ("cpu-bn-16x32x32", 4, 16, 32, "cpu"),
    ("cuda-bn-fastsurfer-16x64x256", 16, 64, 256, "cuda"),
]


@pytest.mark.parametrize("impl", [i for i in IMPLEMENTATIONS if not i[2]], ids=_impl_id)
@pytest.mark.parametrize("case", _cases(BN_CASES, lambda c: c[4], lambda c: c[0]))
def test_batchnorm2d_train_forward(benchmark, case, impl, environment):
    label, n, c, hw, device = case
    name, mode, settings = impl
    _skip_if_unavailable(device, settings)
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(n, c, hw, hw, generator=gen) * 2 + 3).to(device)

    def forward(mode, stream):
        if mode is None:
            return F.batch_norm(x, None, None, training=True)
        return batch_norm2d(x, None, None, training=True, mode=mode, stream=stream)

    run = _runner(impl, forward)

    def timed():
        out = run(0)
        _sync(device)
        return out

    benchmark.pedantic(timed, rounds=3 if device == "cpu" else 10, iterations=1, warmup_rounds=1)
    samples = [run(seed) for seed in range(SAMPLES)]
    reference = F.batch_norm(x.double(), None, None, training=True)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        {
            "op": "batchnorm2d_train_forward",
            "case": label,
            "shape": {"N": n, "C": c, "H": hw, "W": hw},
            "device": device,
            "implementation": name,
            "mode": mode or "native",
            "gflops": 8.0 * x.numel() / seconds / 1e9,
            "gbytes_per_s": 12.0 * x.numel() / seconds / 1e9,
            "environment": environment,
            **significant_bits(samples, reference, stochastic=mode in ("sr", "rr")),
        }
    )


# ---------------------------------------------------------------- the Verificarlo build (image)
#
# In the harness-verificarlo image the ieee kernels are also built with verificarlo-c --inst-fma
# ($HARNESS_VFC_LIBRARY). The backend is the one in VFC_BACKENDS (fixed for the process), e.g.
#   harness containers bench harness/verificarlo:... -k verificarlo \
#       --env VFC_BACKENDS="libinterflop_mca.so --mode=rr"
# and again with libinterflop_ieee.so, then `harness compare` the two runs. Elsewhere these cases
# skip: no instrumented library here, or no backend chosen (loading one unset would make
# Verificarlo exit the interpreter).

VFC_CONV_CASES = [c for c in CONV_CASES if c.device == "cpu"]
VFC_BN_CASES = [c for c in BN_CASES if c[4] == "cpu"]


@pytest.fixture(scope="module")
def vfc():
    """(kernels, backend) of the Verificarlo build under $VFC_BACKENDS, or skip."""
    import os

    from harness.errors import HarnessError
    from harness.kernels.vfc import LIBRARY_ENV, load_library
    from harness.kernels.vfc_backends import backend_from_vfc_backends

    if not os.environ.get(LIBRARY_ENV):
        pytest.skip(
            f"no Verificarlo build of the kernels (${LIBRARY_ENV}; in the verificarlo image)"
        )
    try:
        backend = backend_from_vfc_backends(os.environ.get("VFC_BACKENDS"))
        return load_library(backend), backend
    except HarnessError as exc:
        pytest.skip(str(exc))


def _conv_shape(case) -> dict:
    """The conv case's geometry as recorded in ``extra_info`` (NCHW input, KRS filters)."""
    return {"N": case.n, "C": case.c, "H": case.hw, "W": case.hw, "K": case.k,
            "R": case.kernel, "S": case.kernel}  # fmt: skip


def _vfc_info(backend) -> dict:
    import os

    return {
        "implementation": "verificarlo",
        "mode": backend.name,
        "verificarlo_backend": backend.name,
        "vfc_backends": os.environ.get("VFC_BACKENDS"),
        "verificarlo_version": os.environ.get("VERIFICARLO_VERSION"),
    }


@pytest.mark.parametrize("case", VFC_CONV_CASES, ids=lambda c: c.name)
def test_conv2d_forward_verificarlo(benchmark, case, vfc, environment):
    from harness.kernels.clib import ConvGeometry

    kernels, backend = vfc
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(case.n, case.c, case.hw, case.hw, generator=gen)
    w = torch.randn(case.k, case.c, case.kernel, case.kernel, generator=gen) * 0.1
    geometry = ConvGeometry((1, 1), (case.padding, case.padding), (1, 1))
    xn, wn = x.numpy(), w.numpy()
    benchmark.pedantic(lambda: kernels.conv2d_forward(xn, wn, None, geometry), rounds=3,
                       iterations=1, warmup_rounds=1)  # fmt: skip
    xs = xn[: case.sig_batch]
    # successive calls draw new Verificarlo noise: they are the samples
    samples = [torch.from_numpy(kernels.conv2d_forward(xs, wn, None, geometry))
               for _ in range(SAMPLES)]  # fmt: skip
    reference = F.conv2d(x[: case.sig_batch].double(), w.double(), padding=case.padding)
    seconds = benchmark.stats.stats.mean
    out_numel = case.n * case.k * case.hw * case.hw
    flops = 2.0 * out_numel * case.c * case.kernel**2
    benchmark.extra_info.update(
        {
            "op": "conv2d_forward",
            "case": case.name,
            "shape": _conv_shape(case),
            "device": "cpu",
            **_vfc_info(backend),
            "tf32": False,
            "cudnn_benchmark": False,
            "gflops": flops / seconds / 1e9,
            "gbytes_per_s": 4.0 * (x.numel() + w.numel() + out_numel) / seconds / 1e9,
            "environment": environment,
            **significant_bits(samples, reference, stochastic=backend.mode is not None),
        }
    )


@pytest.mark.parametrize("case", VFC_BN_CASES, ids=lambda c: c[0])
def test_batchnorm2d_train_forward_verificarlo(benchmark, case, vfc, environment):
    label, n, c, hw, _ = case
    kernels, backend = vfc
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, c, hw, hw, generator=gen) * 2 + 3
    xn = x.numpy()
    benchmark.pedantic(lambda: kernels.bn_forward_train(xn), rounds=3, iterations=1,
                       warmup_rounds=1)  # fmt: skip
    samples = [torch.from_numpy(kernels.bn_forward_train(xn)[0]) for _ in range(SAMPLES)]
    reference = F.batch_norm(x.double(), None, None, training=True)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        {
            "op": "batchnorm2d_train_forward",
            "case": label,
            "shape": {"N": n, "C": c, "H": hw, "W": hw},
            "device": "cpu",
            **_vfc_info(backend),
            "gflops": 8.0 * x.numel() / seconds / 1e9,
            "gbytes_per_s": 12.0 * x.numel() / seconds / 1e9,
            "environment": environment,
            **significant_bits(samples, reference, stochastic=backend.mode is not None),
        }
    )
