"""One job after another in this process: the default executor, today's behaviour."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from harness.executors.base import Activity, Executor, check_keys
from harness.executors.jobs import Job, JobOutcome, JobStatus, execute_job
from harness.executors.spec import ExecutorKind
from harness.threads import thread_record


class SerialExecutor(Executor):
    """Runs jobs in order, in this process, under the command's thread policy.

    Parameters
    ----------
    retries : int
        Reruns of a job that raised an unexpected exception (as Dask's ``retries=``).
    """

    kind = ExecutorKind.SERIAL

    def __init__(self, retries: int = 0):
        self.retries = retries
        self._cancelled = False

    @property
    def workers(self) -> int:
        return 1

    def describe(self) -> dict:
        return {"kind": self.kind.value, "workers": 1,
                "threads_per_job": thread_record()["torch_intra_op"]}  # fmt: skip

    def submit(self, jobs: Sequence[Job]) -> list[Job]:
        check_keys(jobs)
        return list(jobs)

    def keys(self, handles: Sequence[Job]) -> list[str]:
        return [job.key for job in handles]

    def as_completed(self, handles: Sequence[Job],
                     tick: Callable[[Activity], None] | None = None) -> Iterator[JobOutcome]:  # fmt: skip
        for job in handles:
            if self._cancelled:
                return
            if tick is not None:
                tick(Activity(running=1))
            yield self._run(job)

    def _run(self, job: Job) -> JobOutcome:
        for attempt in range(self.retries + 1):
            try:
                return execute_job(job, retried=attempt)
            except Exception as exc:  # an unexpected error: retried, then reported
                error = f"{type(exc).__name__}: {exc}"
        return JobOutcome(job.key, JobStatus.FAILED, error=error, retried=self.retries)

    def cancel(self, handles: Sequence[Job]) -> None:
        self._cancelled = True
