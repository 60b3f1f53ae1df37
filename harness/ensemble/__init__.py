"""Ensembles of trained models: run members that differ by one named factor, analyse agreement.

``run_ensemble`` and ``analyze_ensemble`` are imported lazily (they pull in torch and pandas).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "run_ensemble": "harness.ensemble.run",
    "analyze_ensemble": "harness.ensemble.analyze",
    "plan_ensemble": "harness.ensemble.plan",
    "MemberSpec": "harness.ensemble.plan",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness.ensemble' has no attribute {name!r}")
