"""Shared test fixtures."""

from __future__ import annotations

import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def run_cli(capsys):
    """Call ``harness.cli.main`` in-process and return (exit code, stdout, stderr)."""
    from harness.cli import main

    def run(*args: str):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
