"""harness: measure, report, guard and exploit the numerical variability of training.

Sub-packages, data flowing one way:
``perturb`` (stochastic arithmetic, seeds) -> ``models``, ``data``, ``train`` -> ``ensemble`` ->
``metrics`` -> ``brainage``, ``introspect`` -> ``store`` -> ``report``; plus ``kernels``,
``containers`` and ``executors``. ``harness.cli`` is a thin command line over these.
"""

__version__ = "0.1.0"

from harness.errors import HarnessError  # noqa: E402

__all__ = ["HarnessError", "__version__"]
