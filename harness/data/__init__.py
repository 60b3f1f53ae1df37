"""Neuroimaging data: NIfTI I/O, conforming, thick-slice datasets, cohorts and synthetic cohorts.

Names are imported lazily so that ``import harness.data`` does not pull in torch or scipy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_volume": "harness.data.io",
    "save_volume": "harness.data.io",
    "load_pair": "harness.data.io",
    "conform": "harness.data.conform",
    "is_conformed": "harness.data.conform",
    "ThickSliceDataset": "harness.data.slices",
    "stack_slices": "harness.data.slices",
    "labels_to_classes": "harness.data.labels",
    "classes_to_labels": "harness.data.labels",
    "merge_hemispheres": "harness.data.labels",
    "lut_for_view": "harness.data.labels",
    "Cohort": "harness.data.cohort",
    "load_cohort": "harness.data.cohort",
    "load_atlas": "harness.data.atlas",
    "generate_cohort": "harness.data.synth",
    "GenerativeModel": "harness.data.synth",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness.data' has no attribute {name!r}")
