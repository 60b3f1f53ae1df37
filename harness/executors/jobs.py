"""Jobs: plain-data descriptions of independent work, and the wrapper that runs one.

A :class:`Job` names its function (``"package.module:function"``, or a top-level function) and
passes JSON-able keyword arguments: configurations and paths, never live objects, so that it
runs the same in this process and in a worker process on another machine. A job that writes a
run directory names it (``run_dir``): :func:`execute_job` holds that directory's exclusive lock
(:class:`harness.runs.RunLock`) while the function runs, reports a directory that was complete
before the job as :attr:`JobStatus.KEPT`, and records the job (threads, worker, wall time) in the
run's manifest.

Errors: a :class:`harness.errors.HarnessError` (bad input, a diverged loss, a locked directory) is
the job's result, reported as :attr:`JobStatus.FAILED` and never retried, since rerunning would
fail the same way; any other exception leaves the wrapper so that the executor can retry it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from harness.errors import HarnessError, InputError
from harness.runs import RunDir, RunLock
from harness.threads import apply_thread_policy, available_cores, thread_record


class JobStatus(Enum):
    """How a job ended."""

    DONE = "done"  # ran to the end now
    KEPT = "kept"  # its run directory was already complete: nothing recomputed
    FAILED = "failed"  # raised; the error is in the outcome
    CANCELLED = "cancelled"  # never ran to the end: the executor was cancelled


@dataclass(frozen=True)
class Job:
    """One independent unit of work.

    Parameters
    ----------
    key : str
        Unique name among the jobs of one submission (shown in the progress bar and summary).
    func : str or callable
        ``"package.module:function"``, or a top-level (importable, picklable) function.
    kwargs : dict
        Keyword arguments: JSON-able plain data only.
    run_dir : str, optional
        The run directory the job writes: locked while it runs, recorded in.
    hooks : dict
        In-process extras (callbacks) added to ``kwargs``; only the serial executor runs jobs
        that have them.
    """

    key: str
    func: str | Callable
    kwargs: dict = field(default_factory=dict)
    run_dir: str | None = None
    hooks: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.key, str) or not self.key:
            raise InputError(f"job key must be a non-empty string, got {self.key!r}")
        resolve_function(self.func)  # fails now, not on a worker
        try:
            json.dumps(self.kwargs)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"job {self.key}: kwargs must be JSON-able plain data ({exc})"
            ) from None


@dataclass(frozen=True)
class JobOutcome:
    """What one job gave back (plain data, plus the function's return value)."""

    key: str
    status: JobStatus
    value: Any = None
    error: str | None = None
    wall_s: float | None = None
    worker: str | None = None
    threads: int | None = None
    retried: int = 0

    @property
    def ok(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.KEPT)


@dataclass(frozen=True)
class ThreadShare:
    """Compute threads of each job: ``fixed``, or this host's cores divided among its job slots
    (``slots_by_host``: worker threads per host of an existing cluster); at least 1."""

    fixed: int | None = None
    slots_by_host: dict = field(default_factory=dict)

    def resolve(self, host: str) -> int:
        if self.fixed is not None:
            return self.fixed
        return max(1, available_cores() // max(1, self.slots_by_host.get(host, 1)))


def resolve_function(func: str | Callable) -> Callable:
    """The function a job names.

    Raises
    ------
    InputError
        If ``func`` is not ``"module:function"`` of an importable module, or not a top-level
        function.
    """
    if callable(func):
        qualname = getattr(func, "__qualname__", "")
        if "<" in qualname or "." in qualname or not getattr(func, "__module__", None):
            raise InputError(f"a job's function must be a top-level function, got {qualname!r}")
        return func
    module, sep, name = str(func).partition(":")
    if not sep or not module or not name:
        raise InputError(f"a job's function must look like 'package.module:function', got {func!r}")
    try:
        target = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"job function {func!r} cannot be imported: {exc}") from None
    if not callable(target):
        raise InputError(f"job function {func!r} is not callable")
    return target


def worker_address() -> str | None:
    """The Dask worker running this code, None outside a worker."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def execute_job(job: Job, share: ThreadShare | None = None, *, apply_threads: bool = False,
                retried: int = 0) -> JobOutcome:  # fmt: skip
    """Run ``job`` here (module docstring); the function shipped to Dask workers.

    ``apply_threads``: set the thread policy of this process to the job's share first (worker
    processes are the edge of their jobs; the serial executor keeps the command's policy).
    """
    host = socket.gethostname()
    if apply_threads and share is not None:
        apply_thread_policy(min(share.resolve(host), available_cores()))
    threads = thread_record()
    worker = worker_address()
    start = time.perf_counter()
    lock = RunLock(job.run_dir) if job.run_dir else contextlib.nullcontext()
    try:
        with lock:
            kept = job.run_dir is not None and RunDir(job.run_dir).is_complete()
            value = resolve_function(job.func)(**job.kwargs, **job.hooks)
            wall = time.perf_counter() - start
            if job.run_dir is not None and not kept and RunDir(job.run_dir).exists():
                broke = getattr(lock, "broke", None)
                RunDir(job.run_dir).update(job={
                    "key": job.key, "wall_s": wall, "worker": worker or "in-process",
                    "host": host, "pid": os.getpid(), "threads": threads,
                    "replaced_stale_lock": None if broke is None else broke.describe(),
                })  # fmt: skip
    except HarnessError as exc:
        return JobOutcome(job.key, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}",
                          wall_s=time.perf_counter() - start, worker=worker,
                          threads=threads["torch_intra_op"], retried=retried)  # fmt: skip
    status = JobStatus.KEPT if kept else JobStatus.DONE
    return JobOutcome(job.key, status, value=value, wall_s=wall, worker=worker,
                      threads=threads["torch_intra_op"], retried=retried)  # fmt: skip
