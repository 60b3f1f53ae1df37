"""Executors: run independent jobs (ensemble members, sweep runs, per-image benchmarks) one after
another in this process, or on a Dask distributed cluster.

A :class:`Job` is plain data (a function named by path, JSON-able arguments, the run directory it
writes); an :class:`Executor` submits jobs, yields their outcomes as they end, and cancels.
:class:`SerialExecutor` is the default; :class:`~harness.executors.dask.DaskExecutor` runs a
local cluster of worker processes or joins an existing cluster. Results travel as run
directories on a shared filesystem; :func:`execute_job` locks each one while its job writes it.
"""

from harness.executors.base import Activity, Executor
from harness.executors.jobs import Job, JobOutcome, JobStatus, ThreadShare, execute_job
from harness.executors.progress import summary_rows, summary_table
from harness.executors.runner import (
    JobsFailedError,
    make_executor,
    open_executor,
    raise_for_failures,
    run_jobs,
)
from harness.executors.serial import SerialExecutor
from harness.executors.spec import ExecutorKind, ExecutorSpec

__all__ = [
    "Activity",
    "Executor",
    "ExecutorKind",
    "ExecutorSpec",
    "Job",
    "JobOutcome",
    "JobStatus",
    "JobsFailedError",
    "SerialExecutor",
    "ThreadShare",
    "execute_job",
    "make_executor",
    "open_executor",
    "raise_for_failures",
    "run_jobs",
    "summary_rows",
    "summary_table",
]
