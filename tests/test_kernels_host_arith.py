"""The CUDA kernels' arithmetic (``kernels/arith.h``, ``__host__ __device__``) on the host.

``tests/cuda_host/kernels_host.cu`` is the CPU kernels' bodies compiled by nvcc, so every add, mul,
fma and div goes through the ``__host__ __device__`` rounding functions the CUDA kernels call
(CUDA's math headers included), compiled for the host. Each is loaded through the C API of
``harness_kernels.h`` and must give bitwise the results of the CPU kernels (``kernels_cpu.c``,
built by the C compiler with the project's flags), in every mode, on values that include
subnormals, +-0, inf, NaN, powers of two and values next to overflow. No GPU needed; nvcc is
(the ``nvcc`` fixture: skipped without it, a failure when CI is set).
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.kernels import build
from harness.kernels.build import SOURCE_DIR, BuildVariant, KernelMode
from harness.kernels.clib import ConvGeometry, KernelLibrary

HOST_SOURCE = Path(__file__).parent / "cuda_host" / "kernels_host.cu"
MODES = ["ieee", "sr", "rr"]
DTYPES = [np.float32, np.float64]


def _compile(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, " ".join(cmd) + "\n" + result.stderr[-4000:]


@pytest.fixture(scope="module")
def libraries(nvcc, tmp_path_factory):
    """{mode: (CPU kernels built by the C compiler, the same bodies built by nvcc)}."""
    out = tmp_path_factory.mktemp("host-arith")
    compiler = build.find_c_compiler()
    built = {}
    for name in MODES:
        mode = KernelMode(name)
        flags = [f for f in build._c_flags(mode, BuildVariant.NATIVE) if f != "-fvisibility=hidden"]
        cpu, host = out / f"cpu_{name}.so", out / f"nvcc_host_{name}.so"
        _compile([compiler, *flags, "-shared", "-I", str(SOURCE_DIR),
                  str(SOURCE_DIR / build.C_SOURCE), "-o", str(cpu)])  # fmt: skip
        _compile([nvcc, "-x", "cu", "-std=c++17", "-O2", "--fmad=false", "-arch=sm_90",
                  "-Xcompiler", "-fPIC,-ffp-contract=off", "-shared", f"-DHARNESS_MODE_{name.upper()}",
                  "-I", str(SOURCE_DIR), str(HOST_SOURCE), "-o", str(host)])  # fmt: skip
        built[name] = tuple(ctypes.CDLL(str(p), mode=ctypes.RTLD_LOCAL) for p in (cpu, host))
    return built


def _pair(libraries, mode: str, seed: int = 7) -> tuple[KernelLibrary, KernelLibrary]:
    cpu, host = libraries[mode]
    return KernelLibrary(cpu, seed=seed), KernelLibrary(host, seed=seed)


def value_classes(dtype, n: int, seed: int) -> np.ndarray:
    """Normals over the whole exponent range, subnormals, +-0, +-inf, NaN, powers of two and the
    values next to overflow, shuffled."""
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    normals = np.exp(rng.uniform(np.log(info.tiny), np.log(info.max), n)).astype(dtype)
    subnormals = (rng.integers(1, 2 ** (info.nmant - 1), 24) * info.smallest_subnormal).astype(
        dtype
    )
    powers = np.ldexp(np.ones(40, dtype=dtype), rng.integers(info.minexp, info.maxexp, 40))
    top = np.array([info.max, np.nextafter(info.max, 0), info.tiny, 1.0, 1.5], dtype=dtype)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dtype)
    values = np.concatenate([normals, subnormals, powers, top, specials])
    values *= np.where(rng.random(values.size) < 0.5, -1, 1).astype(dtype)
    return rng.permutation(values)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equality, NaNs and the sign of zero included."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_fma_and_add_over_value_classes(libraries, mode, dtype):
    # a 1x1 convolution with bias is one fma and one add per output: y = fma(x, w, 0) + b
    cpu, host = _pair(libraries, mode)
    x = value_classes(dtype, 400, seed=1).reshape(1, 1, 1, -1)
    b = value_classes(dtype, x.size - 1, seed=2)[:1]
    for w in (np.array([[[[1.0 + 2.0**-12]]]], dtype=dtype), np.array([[[[-3.0]]]], dtype=dtype)):
        for bias in (None, b, np.array([np.finfo(dtype).max], dtype=dtype)):
            assert _same(cpu.conv2d_forward(x, w, bias), host.conv2d_forward(x, w, bias))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_conv2d_forward_and_backward_equal_the_cpu_kernels(libraries, mode, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    small = value_classes(dtype, 0, seed=4)  # subnormals, powers of two, +-0 (finite, < 1e3)
    small = small[np.isfinite(small) & (np.abs(small) < 1e3)]
    x.flat[::17] = small[: len(x.flat[::17])]
    w = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    geometry = ConvGeometry(stride=(1, 2), padding=(1, 1))
    cpu, host = _pair(libraries, mode)
    y = cpu.conv2d_forward(x, w, b, geometry)
    assert _same(y, host.conv2d_forward(x, w, b, geometry))
    gy = rng.standard_normal(y.shape).astype(dtype)
    assert _same(cpu.conv2d_backward_input(gy, w, x.shape, geometry),
                 host.conv2d_backward_input(gy, w, x.shape, geometry))  # fmt: skip
    for want, got in zip(cpu.conv2d_backward_weight(x, gy, w.shape, True, geometry),
                         host.conv2d_backward_weight(x, gy, w.shape, True, geometry), strict=True):  # fmt: skip
        assert _same(want, got)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_batchnorm_equals_the_cpu_kernels(libraries, mode, dtype):
    # batch statistics, normalisation (div, sqrt) and the backward reductions
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 4, 5, 6)) * 2 + 3).astype(dtype)
    gamma, beta = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    cpu, host = _pair(libraries, mode)
    forward = [cpu.bn_forward_train(x, gamma, beta), host.bn_forward_train(x, gamma, beta)]
    for want, got in zip(*forward, strict=True):
        assert _same(want, got)
    _, mean, invstd = forward[0]
    assert _same(
        cpu.bn_apply(x, mean, invstd, gamma, beta), host.bn_apply(x, mean, invstd, gamma, beta)
    )
    gy = rng.standard_normal(x.shape).astype(dtype)
    for want, got in zip(cpu.bn_backward_train(x, gy, mean, invstd, gamma),
                         host.bn_backward_train(x, gy, mean, invstd, gamma), strict=True):  # fmt: skip
        assert _same(want, got)


@pytest.mark.parametrize("mode", ["sr", "rr"])
def test_stochastic_modes_really_perturb(libraries, mode):
    # guards the comparison above against two libraries that both silently compute ieee
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 8, 8, 8)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    ieee, _ = _pair(libraries, "ieee")
    cpu, host = _pair(libraries, mode)
    assert cpu.mode_name == host.mode_name == mode
    y_ieee, y_host = ieee.conv2d_forward(x, w), host.conv2d_forward(x, w)
    assert not _same(y_ieee, y_host)
    # 72-term fp32 sums: a normwise error of a few fp32 ulps
    assert np.linalg.norm(y_host - y_ieee) / np.linalg.norm(y_ieee) < 1e-5


def test_philox_blocks_equal(libraries):
    cpu, host = libraries["sr"]
    for ctr, key in [((0, 0, 0, 0), (0, 0)), ((1, 2, 3, 4), (0xDEADBEEF, 0xCAFEF00D)),
                     ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0))]:  # fmt: skip
        outs = []
        for lib in (cpu, host):
            out = (ctypes.c_uint32 * 4)()
            lib.harness_philox_block((ctypes.c_uint32 * 4)(*ctr), (ctypes.c_uint32 * 2)(*key), out)
            outs.append(list(out))
        assert outs[0] == outs[1]
    # the Philox4x32-10 known answer for counter 0, key 0 (Salmon et al., Random123 kat_vectors)
    out = (ctypes.c_uint32 * 4)()
    host.harness_philox_block((ctypes.c_uint32 * 4)(0, 0, 0, 0), (ctypes.c_uint32 * 2)(0, 0), out)
    assert list(out) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
