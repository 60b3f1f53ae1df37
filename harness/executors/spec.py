"""Which executor runs the jobs: the kind (an enum) and its settings, parsed once at the edge."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from harness.enums import parse_enum
from harness.errors import InputError

_ADDRESS = re.compile(r"\A(tcp|tls)://[^\s:/]+:\d{1,5}\Z")


class ExecutorKind(Enum):
    """How independent jobs are run."""

    SERIAL = "serial"  # one after another in this process (the default)
    DASK = "dask"  # on a Dask distributed cluster: a LocalCluster, or an existing one

    @classmethod
    def parse(cls, value: ExecutorKind | str) -> ExecutorKind:
        """The kind named by ``value``.

        Raises
        ------
        InputError
            If ``value`` names no kind.
        """
        return parse_enum(cls, value, "--executor")


@dataclass(frozen=True)
class ExecutorSpec:
    """Checked settings of an executor (build one with :meth:`parse`).

    Attributes
    ----------
    kind : ExecutorKind
    workers : int or None
        Worker processes of a local cluster (None: one per available core).
    scheduler : str or None
        Address ``tcp://HOST:PORT`` of an existing scheduler.
    scheduler_file : Path or None
        Scheduler file written by ``dask scheduler --scheduler-file``, dask-jobqueue or dask-mpi.
    retries : int
        Reruns of a job that raised an unexpected exception (user errors are not retried; a job
        whose worker died is rerun by the scheduler regardless).
    """

    kind: ExecutorKind = ExecutorKind.SERIAL
    workers: int | None = None
    scheduler: str | None = None
    scheduler_file: Path | None = None
    retries: int = 2

    @classmethod
    def parse(cls, executor: str | ExecutorKind | None = None, *, workers: int | None = None,
              scheduler: str | None = None, scheduler_file: str | None = None,
              retries: int = 2) -> ExecutorSpec:  # fmt: skip
        """Check the command-line settings; ``--scheduler``/``--scheduler-file`` imply ``dask``.

        Raises
        ------
        InputError
            On a bad value or a contradiction (e.g. ``serial`` with a scheduler).
        """
        remote = scheduler is not None or scheduler_file is not None
        if executor is None:
            kind = ExecutorKind.DASK if remote or workers is not None else ExecutorKind.SERIAL
        else:
            kind = ExecutorKind.parse(executor)
        if kind is ExecutorKind.SERIAL and (remote or workers is not None):
            raise InputError(
                "--workers, --scheduler and --scheduler-file need --executor dask, got "
                "--executor serial"
            )
        if scheduler is not None and scheduler_file is not None:
            raise InputError("give --scheduler or --scheduler-file, not both")
        if workers is not None:
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise InputError(f"--workers must be a positive integer, got {workers!r}")
            if remote:
                raise InputError("--workers sizes a local cluster; an existing cluster (--scheduler"
                                 "/--scheduler-file) has its own workers")  # fmt: skip
        if scheduler is not None and not _ADDRESS.match(scheduler):
            raise InputError(
                f"--scheduler must look like tcp://HOST:PORT (or tls://HOST:PORT), got {scheduler!r}"
            )
        path = None if scheduler_file is None else _check_scheduler_file(scheduler_file)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InputError(f"--retries must be a non-negative integer, got {retries!r}")
        return cls(kind, workers, scheduler, path, retries)

    def to_dict(self) -> dict:
        """Plain data for manifests."""
        return {
            "kind": self.kind.value, "workers": self.workers, "scheduler": self.scheduler,
            "scheduler_file": None if self.scheduler_file is None else str(self.scheduler_file),
            "retries": self.retries,
        }  # fmt: skip


def _check_scheduler_file(value: str) -> Path:
    path = Path(value)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"--scheduler-file {value} does not exist") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"--scheduler-file {value} is not a readable JSON file: {exc}") from None
    if not isinstance(record, dict) or not isinstance(record.get("address"), str):
        raise InputError(f"--scheduler-file {value} records no scheduler 'address'")
    return path
