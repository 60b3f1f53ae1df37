"""Spectral introspection: per-group singular values of gradients, inputs and adjoints (AutoSpec).

``spectra`` holds the pure math, ``handlers`` the per-layer hooks, ``probe`` the user-facing
:class:`SpectralProbe`, ``table`` the parquet storage, ``stats`` the group comparisons and ``plots``
the figures; the offline demonstrations behind ``harness introspect`` are an experiment
(:mod:`harness.experiments.introspect_demo`).
"""

from harness.enums import OnUnknown
from harness.introspect.handlers import HANDLERS, Handler, Quantity, register_handler
from harness.introspect.probe import COLUMNS, SpectralProbe

__all__ = [
    "COLUMNS",
    "HANDLERS",
    "Handler",
    "OnUnknown",
    "Quantity",
    "SpectralProbe",
    "register_handler",
]
