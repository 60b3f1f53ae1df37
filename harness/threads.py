"""Thread policy: how many CPU threads compute may use, applied once at the command-line edge.

On a machine shared with other work, more compute threads than cores oversubscribe the CPU:
OpenMP workers spin-wait on each other and a step can slow down by an order of magnitude. The
policy is one number, ``threads``, never more than the cores this process may run on
(:func:`available_cores`, from ``os.sched_getaffinity``), applied to torch (intra-op, and
inter-op while it can still be set), to OpenMP/MKL/OpenBLAS through the environment inherited by
subprocesses and extension builds, and so to the native kernels (they use torch's OpenMP
runtime). Library functions never call :func:`apply_thread_policy`; commands do, through the
shared ``--threads`` option, and every manifest records :func:`thread_record`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.errors import InputError

#: environment variables read by OpenMP, MKL and OpenBLAS runtimes (of subprocesses and builds)
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """The number of CPU cores this process may run on (its affinity mask; ``cpu_count``
    where the OS has no affinity call)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """``$OMP_NUM_THREADS`` when it is set to a positive integer (a user's standing choice),
    else every available core; never more than :func:`available_cores`."""
    cores = available_cores()
    try:
        wanted = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return cores
    return min(wanted, cores) if wanted >= 1 else cores


def resolve_threads(threads: int | None) -> int:
    """``threads`` checked against :func:`available_cores` (None: :func:`default_threads`).

    Raises
    ------
    InputError
        Unless ``1 <= threads <= available_cores()``.
    """
    cores = available_cores()
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cores:
        raise InputError(
            f"--threads must be an integer from 1 to {cores} (the cores available to this "
            f"process), got {threads!r}"
        )
    return threads


@dataclass(frozen=True)
class ThreadPolicy:
    """What :func:`apply_thread_policy` set."""

    threads: int
    interop_threads: int | None  # None: torch's inter-op pool had already started


def apply_thread_policy(threads: int | None = None) -> ThreadPolicy:
    """Apply the policy process-wide: torch intra-op (and inter-op when still possible) and the
    OpenMP/MKL/OpenBLAS environment of subprocesses. Call it only at the command-line edge."""
    import torch

    threads = resolve_threads(threads)
    torch.set_num_threads(threads)
    interop: int | None = threads
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only settable before the first inter-op parallel work
        interop = None
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    return ThreadPolicy(threads=threads, interop_threads=interop)


def load_average() -> float | None:
    """The one-minute load average, None where the OS does not report one."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def thread_record() -> dict:
    """The threads in effect now, for manifests and benchmark records."""
    import torch

    return {
        "torch_intra_op": torch.get_num_threads(),
        "torch_inter_op": torch.get_num_interop_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cores_available": available_cores(),
        "load_avg_1m": load_average(),
    }
