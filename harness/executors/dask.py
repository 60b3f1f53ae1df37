"""Jobs on a Dask distributed cluster: a local cluster of worker processes, or an existing one.

A local cluster (:class:`distributed.LocalCluster`) has ``workers`` worker processes with one
Dask thread each, listening on 127.0.0.1 only; each job computes with ``cores // workers``
threads (at least 1), set inside the job. An existing cluster is reached by its scheduler address
or scheduler file (what ``dask scheduler``, dask-jobqueue and dask-mpi write); each job there
gets its host's cores divided among the worker threads on that host.

Failures: a job that raises an unexpected exception is rerun up to ``retries`` times
(``Client.submit(retries=...)``); a job whose worker process dies is rescheduled on another
worker by the scheduler (up to ``distributed.scheduler.allowed-failures`` deaths), and resumes
from the checkpoints its run directory holds; :class:`harness.errors.HarnessError` results are
not retried (:mod:`harness.executors.jobs`).
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from harness.errors import InputError, MissingDependencyError
from harness.executors.base import Activity, Executor, check_keys
from harness.executors.jobs import Job, JobOutcome, JobStatus, ThreadShare, execute_job
from harness.executors.spec import ExecutorKind
from harness.threads import THREAD_ENV, available_cores

#: seconds between two looks at the cluster while waiting for jobs
POLL_S = 1.0


def _attempts(dask_scheduler, keys):
    """Runs on the scheduler: reruns so far of each task (worker deaths + retried errors)."""
    found = {}
    for key in keys:
        ts = dask_scheduler.tasks.get(key)
        if ts is not None:
            found[key] = (ts.suspicious, ts.retries)
    return found


class DaskExecutor(Executor):
    """Runs jobs on a Dask cluster (module docstring).

    Parameters
    ----------
    workers : int, optional
        Worker processes of a local cluster (default: one per available core).
    scheduler : str, optional
        ``tcp://HOST:PORT`` of an existing scheduler.
    scheduler_file : path, optional
        Scheduler file of an existing cluster.
    retries : int
        Reruns of a job that raised an unexpected exception.
    timeout_s : float
        How long to wait for an existing scheduler and its first worker.
    """

    kind = ExecutorKind.DASK

    def __init__(self, workers: int | None = None, *, scheduler: str | None = None,
                 scheduler_file: str | None = None, retries: int = 2,
                 timeout_s: float = 60.0):  # fmt: skip
        from distributed import Client, LocalCluster

        self.retries = retries
        self.cluster = None
        self._initial: dict[str, int] = {}
        self._retried: dict[str, int] = {}
        bokeh = importlib.util.find_spec("bokeh") is not None  # the dashboard needs it
        if scheduler is None and scheduler_file is None:
            n = workers or available_cores()
            threads = max(1, available_cores() // n)
            self.cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                # loopback, a free port; without bokeh the scheduler serves no dashboard pages
                dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": bokeh},
                silence_logs=logging.CRITICAL, env={name: str(threads) for name in THREAD_ENV},
            )  # fmt: skip
            self.client = Client(self.cluster)
            self.share = ThreadShare(fixed=threads)
            self.address = self.cluster.scheduler_address
        else:
            self.client = _connect(Client, scheduler, scheduler_file, timeout_s)
            self.share = ThreadShare(slots_by_host=self._slots_by_host())
            self.address = self.client.scheduler.address
        self.dashboard = self._dashboard(local_bokeh=bokeh if self.cluster else None)

    def _dashboard(self, local_bokeh: bool | None) -> str | None:
        if local_bokeh is False:  # the scheduler's HTTP routes run, but no dashboard pages
            return None
        try:
            info = self.client.scheduler_info()
        except Exception:  # noqa: BLE001 - a dashboard is optional
            return None
        return self.client.dashboard_link if "dashboard" in info.get("services", {}) else None

    def _slots_by_host(self) -> dict[str, int]:
        slots: Counter = Counter()
        for info in self.client.scheduler_info(n_workers=-1)["workers"].values():
            slots[info["host"]] += int(info.get("nthreads", 1))
        return dict(slots)

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def describe(self) -> dict:
        import dask

        return {
            "kind": self.kind.value, "workers": self.workers, "scheduler": self.address,
            "local_cluster": self.cluster is not None, "threads_per_job": self.share.fixed,
            "slots_by_host": self.share.slots_by_host, "retries": self.retries,
            # worker deaths a job survives before it fails with KilledWorker
            "allowed_failures": dask.config.get("distributed.scheduler.allowed-failures"),
        }  # fmt: skip

    def submit(self, jobs: Sequence[Job]) -> list:
        check_keys(jobs)
        for job in jobs:
            if job.hooks:
                raise InputError(
                    f"job {job.key} carries in-process callbacks ({sorted(job.hooks)}); only the "
                    "serial executor runs those"
                )
        token = secrets.token_hex(4)
        futures = []
        for job in jobs:
            future = self.client.submit(
                execute_job, job, self.share, apply_threads=True, key=f"{job.key}-{token}",
                retries=self.retries, pure=False,
            )  # fmt: skip
            future.job_key = job.key
            futures.append(future)
        return futures

    def keys(self, handles: Sequence) -> list[str]:
        return [future.job_key for future in handles]

    def as_completed(self, handles: Sequence,
                     tick: Callable[[Activity], None] | None = None) -> Iterator[JobOutcome]:  # fmt: skip
        from distributed import wait

        pending = set(handles)
        while pending:
            try:
                done, _ = wait(list(pending), timeout=POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            self._count_reruns(pending)
            for future in done:
                pending.discard(future)
                yield self._outcome(future)
            if tick is not None and pending:
                tick(self._activity(pending))

    def cancel(self, handles: Sequence) -> None:
        self.client.cancel(list(handles))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    # -- internals -----------------------------------------------------------------------------
    def _count_reruns(self, futures) -> None:
        keys = [f.key for f in futures]
        try:
            found = self.client.run_on_scheduler(_attempts, keys=keys)
        except Exception:  # noqa: BLE001 - a scheduler may refuse to run code; counts are extra
            return
        for key, (suspicious, left) in found.items():
            self._initial.setdefault(key, self.retries)
            reruns = suspicious + max(0, self._initial[key] - left)
            self._retried[key] = max(self._retried.get(key, 0), reruns)

    def _activity(self, pending) -> Activity:
        keys = {f.key for f in pending}
        try:  # a worker may hold more tasks than threads (queued there): count at most nthreads
            slots = self.client.nthreads()
            running = sum(
                min(len(keys & set(tasks)), slots.get(worker, 1))
                for worker, tasks in self.client.processing().items()
            )
        except Exception:  # noqa: BLE001 - counts are for display only
            running = 0
        retried = sum(1 for key, n in self._retried.items() if n and key in keys)
        return Activity(running=running, retried=retried)

    def _outcome(self, future) -> JobOutcome:
        retried = self._retried.get(future.key, 0)
        if future.status == "finished":
            outcome = future.result()
            return JobOutcome(outcome.key, outcome.status, outcome.value, outcome.error,
                              outcome.wall_s, outcome.worker, outcome.threads, retried)  # fmt: skip
        if future.status == "cancelled":
            return JobOutcome(future.job_key, JobStatus.CANCELLED, retried=retried)
        exc = future.exception()
        return JobOutcome(future.job_key, JobStatus.FAILED, error=_describe(exc), retried=retried)


def _describe(exc: BaseException) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return f"KilledWorker: the workers running it died too often ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _connect(client_cls, scheduler, scheduler_file, timeout_s):
    where = scheduler or f"the scheduler file {scheduler_file}"
    client = None
    try:
        if scheduler is not None:
            client = client_cls(scheduler, timeout=timeout_s)
        else:
            client = client_cls(scheduler_file=str(scheduler_file), timeout=timeout_s)
        client.wait_for_workers(1, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        if client is not None:
            client.close()
        raise MissingDependencyError(
            f"cannot use the Dask cluster at {where} (no scheduler, or no worker within "
            f"{timeout_s:.0f} s): {type(exc).__name__}: {exc}"
        ) from None
    return client
