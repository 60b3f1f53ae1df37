"""Run a list of jobs on an executor: progress, outcomes as they come, failures raised last."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from harness.errors import HarnessError
from harness.executors.base import Executor
from harness.executors.jobs import Job, JobOutcome
from harness.executors.progress import JobProgress
from harness.executors.serial import SerialExecutor
from harness.executors.spec import ExecutorKind, ExecutorSpec


class JobsFailedError(HarnessError):
    """Some jobs failed; every other job ran to its end and its results were kept.

    ``outcomes`` holds every job's outcome.
    """

    def __init__(self, message: str, outcomes: Sequence[JobOutcome]):
        super().__init__(message)
        self.outcomes = list(outcomes)


def run_jobs(executor: Executor, jobs: Sequence[Job], *, desc: str = "jobs",
             progress: bool = True,
             on_outcome: Callable[[JobOutcome], None] | None = None) -> list[JobOutcome]:  # fmt: skip
    """Submit ``jobs``, wait for all, and return their outcomes in job order.

    ``on_outcome`` is called in this process as each job ends. Failed jobs do not stop the
    others; :func:`raise_for_failures` turns them into one error afterwards.
    """
    handles = executor.submit(jobs)
    order = {job.key: i for i, job in enumerate(jobs)}
    bar = JobProgress(len(jobs), desc=desc, disable=not progress)
    outcomes: list[JobOutcome] = []
    try:
        for outcome in executor.as_completed(handles, tick=bar.tick):
            outcomes.append(outcome)
            bar.done(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    except BaseException:
        with contextlib.suppress(Exception):
            executor.cancel(handles)
        raise
    finally:
        bar.close()
    return sorted(outcomes, key=lambda o: order[o.key])


def raise_for_failures(outcomes: Sequence[JobOutcome], what: str = "jobs") -> None:
    """Raise :class:`JobsFailedError` listing every failed job with its error, if any."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return
    listing = "; ".join(f"{o.key}: {o.error or o.status.value}" for o in failed)
    raise JobsFailedError(
        f"{len(failed)} of {len(outcomes)} {what} failed (the others finished and were kept; "
        f"run the same command again to retry): {listing}",
        outcomes,
    )


def make_executor(spec: ExecutorSpec | None = None) -> Executor:
    """The executor ``spec`` describes (None: serial)."""
    spec = spec or ExecutorSpec()
    if spec.kind is ExecutorKind.SERIAL:
        return SerialExecutor(retries=spec.retries)
    from harness.executors.dask import DaskExecutor

    return DaskExecutor(spec.workers, scheduler=spec.scheduler,
                        scheduler_file=spec.scheduler_file, retries=spec.retries)  # fmt: skip


@contextlib.contextmanager
def open_executor(spec: ExecutorSpec | None = None) -> Iterator[Executor]:
    """:func:`make_executor` as a context manager that closes the executor."""
    executor = make_executor(spec)
    try:
        yield executor
    finally:
        executor.close()
