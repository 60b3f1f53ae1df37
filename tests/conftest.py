"""Shared test fixtures."""

from __future__ import annotations

import os

import pytest
import torch

from harness.threads import THREAD_ENV

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def run_cli(capsys):
    """Call ``harness.cli.main`` in-process and return (exit code, stdout, stderr)."""
    from harness.cli import main

    def run(*args: str):
        # commands apply the thread policy process-wide (--threads); keep the test process's
        threads, env = torch.get_num_threads(), {k: os.environ.get(k) for k in THREAD_ENV}
        try:
            code = main([str(a) for a in args])
        finally:
            torch.set_num_threads(threads)
            for key, value in env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory):
    """A 4-subject synthetic cohort on a 24^3 grid, generated once per test session (~5 s)."""
    import tempfile
    from pathlib import Path

    from harness.data.synth import generate_cohort

    cache = Path(tempfile.gettempdir()) / "harness-test-cache"
    root = tmp_path_factory.mktemp("tiny-cohort") / "cohort"
    generate_cohort(4, root, seed=0, grid=24, cache_dir=cache, progress=False)
    return root
