"""A progress bar over jobs and the summary table printed at the end."""

from __future__ import annotations

from collections.abc import Sequence

from harness.executors.base import Activity
from harness.executors.jobs import JobOutcome, JobStatus

SUMMARY_COLUMNS = ("job", "status", "wall_s", "threads", "retried", "worker", "error")


class JobProgress:
    """tqdm bar over ``total`` jobs with finished / running / failed / retried counts."""

    def __init__(self, total: int, desc: str = "jobs", disable: bool = False):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="job", disable=disable)
        self.finished = self.failed = self.running = 0
        self._retried_done = self._retried_pending = 0

    @property
    def retried(self) -> int:
        """Jobs rerun at least once (finished or still in flight)."""
        return self._retried_done + self._retried_pending

    def tick(self, activity: Activity) -> None:
        self.running, self._retried_pending = activity.running, activity.retried
        self._show()

    def done(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            self.finished += 1
        else:
            self.failed += 1
        self.running = max(0, self.running - 1)
        self._retried_done += outcome.retried > 0
        self.bar.update()
        self._show()

    def _show(self) -> None:
        self.bar.set_postfix(finished=self.finished, running=self.running, failed=self.failed,
                             retried=self.retried)  # fmt: skip

    def close(self) -> None:
        self.bar.close()


def summary_rows(outcomes: Sequence[JobOutcome]) -> list[dict]:
    """One plain row per job (:data:`SUMMARY_COLUMNS`)."""
    return [
        {
            "job": o.key,
            "status": o.status.value,
            "wall_s": None if o.wall_s is None else round(o.wall_s, 2),
            "threads": o.threads,
            "retried": o.retried,
            "worker": o.worker or ("in-process" if o.ok else None),
            "error": o.error,
        }  # fmt: skip
        for o in outcomes
    ]


def summary_table(outcomes: Sequence[JobOutcome] | Sequence[dict]) -> str:
    """The summary as fixed-width text, from outcomes or from their :func:`summary_rows` (as a
    manifest keeps them); errors are cut to one line of 80 characters."""
    records = [o for o in outcomes if isinstance(o, dict)]
    records += summary_rows([o for o in outcomes if not isinstance(o, dict)])
    rows = [[_cell(row.get(c)) for c in SUMMARY_COLUMNS] for row in records]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(SUMMARY_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(SUMMARY_COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    counts = {s.value: sum(row.get("status") == s.value for row in records) for s in JobStatus}
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items() if n))
    return "\n".join(line.rstrip() for line in lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    text = str(value).splitlines()[0] if str(value) else ""
    return text if len(text) <= 80 else text[:77] + "..."
