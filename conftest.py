"""Test-wide hooks for tests/ and benchmarks/ (pytest loads this root conftest for both)."""

from __future__ import annotations

import pytest

NO_CUDA = (
    "needs a CUDA device: torch.cuda.is_available() is False here; on a GPU machine run "
    "`python -m pytest -m cuda` (tools/gpu/run_checks.sh does)"
)


def pytest_collection_modifyitems(config, items):
    """Skip every test marked ``cuda``, with the reason, when no CUDA device is present."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not cuda_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA)
    for item in cuda_items:
        item.add_marker(skip)
