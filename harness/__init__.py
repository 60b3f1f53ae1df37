"""harness: measure, report, guard and exploit the numerical variability of training.

Sub-packages sit in layers, bottom first (:data:`harness._layers.LAYERS`, kept true by
``tests/test_layers.py``, explained in ``docs/design.md``): ``runs`` (run directories and the
catalogue of their files) -> ``kernels``, ``metrics``, ``introspect`` -> ``perturb`` -> ``data`` ->
``models`` -> ``train`` -> ``ensemble``, ``brainage`` -> ``store`` (the results database) ->
``compare``, ``report`` -> ``experiments`` -> ``commands``; ``harness.cli`` is a thin command
line over these.
"""

__version__ = "0.1.0"

from harness.errors import HarnessError  # noqa: E402

__all__ = ["HarnessError", "__version__"]
