"""The engine's fused CPU kernels (``csrc/perturb_cpu.cpp``), built once per machine.

One pass over memory draws the random words and rounds (rr, sr, ud), in parallel over
elements, instead of a dozen torch passes plus a numpy generator. The extension is compiled
on first use with :func:`torch.utils.cpp_extension.load` (C++ compiler and ninja needed, about a
minute) and cached under ``$HARNESS_KERNELS_CACHE`` (default ``~/.cache/harness/kernels``).

Without a toolchain, or with ``HARNESS_PERTURB_NATIVE=0``, the engine falls back to torch and
numpy code that draws the same random words and applies the same formulas: results are
bitwise identical either way (``tests/test_perturb_native.py``), only slower.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType

from harness.errors import MissingDependencyError

SOURCE = Path(__file__).resolve().parent / "csrc" / "perturb_cpu.cpp"
#: kernel kinds, as the C++ code numbers them
KIND = {"rr": 0, "sr": 1, "ud": 2}


def enabled() -> bool:
    """False when the user turned the native kernels off with ``HARNESS_PERTURB_NATIVE=0``."""
    return os.environ.get("HARNESS_PERTURB_NATIVE", "1").strip().lower() not in {"0", "false", "no"}


def _build_dir() -> Path:
    import torch

    from harness.kernels.build import cache_dir

    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(_cflags()).encode()).hexdigest()
    tag = f"torch{torch.__version__.replace('+', '_')}-perturb-{digest[:12]}"
    return cache_dir() / tag


def _cpu_flags() -> list[str]:
    """AVX2 + FMA code where torch found AVX2 on this CPU (the flags are part of the cache key,
    so a machine without them builds its own copy). Results are bitwise the same either way:
    no contraction (``-ffp-contract=off``), only IEEE operations and explicit fmas."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    return ["-mavx2", "-mfma"] if capability in {"AVX2", "AVX512"} else []


def _cflags() -> list[str]:
    # -fno-trapping-math lets gcc vectorise the branch-free selects (it changes no result);
    # -fopenmp because at::parallel_for is an OpenMP pragma in an ATen header
    return ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fopenmp", *_cpu_flags()]


@cache
def load(verbose: bool = False) -> ModuleType:
    """Build (once per machine) and import the extension.

    Raises
    ------
    MissingDependencyError
        No C++ compiler or ninja, or the compilation failed.
    """
    from torch.utils import cpp_extension

    from harness.kernels.build import _check_cxx_toolchain, build_tools_on_path, make_build_dir

    _check_cxx_toolchain()
    build_dir = make_build_dir(_build_dir())
    if not any(build_dir.glob("*.so")):
        print(
            "harness: compiling the CPU perturbation kernels (once per machine)...", file=sys.stderr
        )
    try:
        with build_tools_on_path():
            return cpp_extension.load(
                name="harness_perturb_cpu",
                sources=[str(SOURCE)],
                extra_cflags=_cflags(),
                extra_ldflags=["-fopenmp"],
                build_directory=str(build_dir),
                verbose=verbose,
            )
    except (RuntimeError, subprocess.CalledProcessError, OSError, ImportError) as exc:
        raise MissingDependencyError(
            f"building the CPU perturbation kernels failed: {exc}"
        ) from exc


def extension() -> ModuleType | None:
    """The loaded extension, or None (fallback) when disabled or unbuildable (warned once)."""
    return _loaded() if enabled() else None


@cache
def _loaded() -> ModuleType | None:
    try:
        return load()
    except MissingDependencyError as exc:
        warnings.warn(
            f"{exc}; the stochastic-arithmetic engine uses its slower torch fallback on CPU "
            "(same results)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
