"""The executor interface: submit independent jobs, gather their outcomes, cancel."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from harness.errors import InputError
from harness.executors.jobs import Job, JobOutcome
from harness.executors.spec import ExecutorKind


@dataclass(frozen=True)
class Activity:
    """Jobs in flight now, for the progress bar."""

    running: int = 0
    retried: int = 0


class Executor(ABC):
    """Runs :class:`~harness.executors.jobs.Job` objects; a context manager that closes what it
    started."""

    kind: ExecutorKind

    #: where to watch the jobs (the Dask dashboard), None when there is nothing to watch
    dashboard: str | None = None

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many jobs may run at once."""

    @abstractmethod
    def describe(self) -> dict:
        """Plain data for manifests: kind, workers, threads per job, scheduler."""

    @abstractmethod
    def submit(self, jobs: Sequence[Job]) -> list:
        """Hand ``jobs`` over; returns one handle per job."""

    @abstractmethod
    def as_completed(self, handles: Sequence,
                     tick: Callable[[Activity], None] | None = None) -> Iterator[JobOutcome]:  # fmt: skip
        """Yield each job's outcome as it ends; ``tick`` is called while waiting."""

    @abstractmethod
    def cancel(self, handles: Sequence) -> None:
        """Stop jobs not yet finished (their outcomes are not yielded)."""

    def gather(self, handles: Sequence) -> list[JobOutcome]:
        """Every outcome, in the order of ``handles``."""
        order = {key: i for i, key in enumerate(self.keys(handles))}
        return sorted(self.as_completed(handles), key=lambda o: order[o.key])

    @abstractmethod
    def keys(self, handles: Sequence) -> list[str]:
        """The job keys of ``handles``, in order."""

    def close(self) -> None:  # noqa: B027 - most executors hold nothing to release
        """Release what the executor started (workers, connections)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_keys(jobs: Sequence[Job]) -> None:
    """Raise :class:`InputError` when two jobs share a key."""
    seen: set[str] = set()
    for job in jobs:
        if job.key in seen:
            raise InputError(f"job keys must be unique, got {job.key!r} twice")
        seen.add(job.key)
