"""Shared test fixtures."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    # Without a GPU the Triton kernels are tested under Triton's CPU interpreter
    # (tests/test_perturb_triton.py). Triton reads this when it is first imported, which no
    # import above does; nothing sends tensors through the kernels unless asked
    # (StochasticArithmetic(triton="interpret")), so the rest of the suite is unaffected.
    os.environ.setdefault("TRITON_INTERPRET", "1")

from harness.threads import THREAD_ENV  # noqa: E402

#: the marker of every test that needs CUDA (the root conftest.py skips them without a GPU)
requires_cuda = pytest.mark.cuda


@pytest.fixture(scope="session")
def nvcc():
    """Path of nvcc (CUDA's compiler; no GPU needed): skips without it, fails when CI is set."""
    import shutil

    path = shutil.which("nvcc")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI is set but nvcc is not on PATH: the CUDA sources must compile in CI "
                "(install the CUDA toolkit, nvcc 13)",
                pytrace=False,
            )
        pytest.skip("nvcc not on PATH (install the CUDA toolkit; with CI set this fails)")
    return path


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


# ----------------------------------------------------------------------------- Docker
#: how to enable the docker tests where they are skipped
ENABLE_DOCKER = (
    "start a Docker engine to run them: as root, `dockerd --bridge=none --iptables=false "
    "--ip-masq=false &` (Debian: apt-get install --no-install-recommends docker.io mmdebstrap "
    "eatmydata); in CI (CI set) they fail instead of skipping"
)


@pytest.fixture(scope="session")
def docker_client():
    """A docker-py client; fails when CI is set and no engine answers, skips otherwise."""
    import os

    from harness.containers import connect
    from harness.errors import MissingDependencyError

    try:
        return connect()
    except MissingDependencyError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the docker tests cannot run: {exc}", pytrace=False)
        pytest.skip(f"docker tests need an engine ({exc}); {ENABLE_DOCKER}")


@pytest.fixture(scope="session")
def base_image(docker_client):
    """The base image made by ``harness containers base`` (kept between sessions).

    ``HARNESS_TEST_BASE`` picks another one: a new ``harness/...`` tag is made from scratch (a
    cold run), any other reference (``python:3.11-slim-bookworm``) is left to the engine to pull.
    """
    import os

    from harness.containers import make_base

    tag = os.environ.get("HARNESS_TEST_BASE") or "harness/base:bookworm"
    if tag.startswith("harness/"):
        make_base(tag, client=docker_client, progress=False)
    return tag


@pytest.fixture(scope="session")
def standard_image(docker_client, base_image):
    """The standard image with torch 2.13.0 (CPU), built once per session from the layer cache."""
    from harness.containers import build_image

    return build_image("standard", base=base_image, torch="2.13.0", client=docker_client,
                       progress=False)  # fmt: skip
