"""Inference on users' scans: per-view FastSurferCNN + view aggregation on a cohort or one scan,
optionally under stochastic arithmetic, with outputs in the input's space (``harness segment``).

Names are imported lazily so that ``import harness.segment`` does not pull in torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SegmentConfig": "harness.segment.run",
    "segment": "harness.segment.run",
    "checkpoints_in": "harness.segment.run",
    "OutputFormat": "harness.segment.outputs",
    "to_native": "harness.segment.outputs",
    "volume_table": "harness.segment.outputs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness.segment' has no attribute {name!r}")
