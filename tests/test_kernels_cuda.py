"""CUDA sources: nvcc compilation (no GPU needed; in CI a missing nvcc fails) and, on a GPU
(marked ``cuda``), agreement with torch."""

from __future__ import annotations

import subprocess

import pytest
import torch
import torch.nn.functional as F

from harness.kernels import KernelStream, batch_norm2d, conv2d
from harness.kernels.build import CUDA_SOURCES, SOURCE_DIR


def test_every_cuda_source_is_built():
    assert sorted(p.name for p in SOURCE_DIR.glob("*.cu")) == sorted(CUDA_SOURCES)


@pytest.mark.parametrize("mode", ["IEEE", "SR", "RR"])
@pytest.mark.parametrize("source", CUDA_SOURCES, ids=lambda s: s.split("_")[0])  # no GPU needed
def test_cuda_sources_compile_with_plain_nvcc(nvcc, source, mode, tmp_path):
    cmd = [nvcc, "-std=c++17", "-O1", "--fmad=false", "-arch=sm_90", f"-DHARNESS_MODE_{mode}"]
    cmd += ["-Werror", "all-warnings", "-c", str(SOURCE_DIR / source), "-o", str(tmp_path / "k.o")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.cuda
def test_cuda_ieee_conv_and_batchnorm_match_torch_fp64():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 11, 9, generator=gen, dtype=torch.float64).cuda().requires_grad_()
    w = torch.randn(7, 5, 5, 3, generator=gen, dtype=torch.float64).cuda().requires_grad_()
    b = torch.randn(7, generator=gen, dtype=torch.float64).cuda().requires_grad_()
    out = batch_norm2d(conv2d(x, w, b, stride=(1, 2), padding=2), None, None, training=True)
    ref = F.batch_norm(F.conv2d(x, w, b, stride=(1, 2), padding=2), None, None, training=True)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(out.pow(2).sum(), (x, w, b))
    ref_grads = torch.autograd.grad(ref.pow(2).sum(), (x, w, b))
    torch.testing.assert_close(grads, ref_grads, rtol=1e-9, atol=1e-9)


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["sr", "rr"])
def test_cuda_stochastic_modes_reproducible(mode):
    x = torch.randn(2, 8, 16, 16, device="cuda")
    w = torch.randn(16, 8, 3, 3, device="cuda")

    def run(seed):
        y = conv2d(x, w, padding=1, mode=mode, stream=KernelStream(seed))
        return batch_norm2d(y, None, None, training=True, mode=mode, stream=KernelStream(seed))

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
    torch.testing.assert_close(
        run(1), batch_norm2d(conv2d(x, w, padding=1), None, None), rtol=1e-3, atol=1e-3
    )
