"""harness.executors without a cluster: job validation, the serial executor, the summary, the
executor options of the command line."""

import pytest

from harness.errors import InputError
from harness.executors import (
    ExecutorKind,
    ExecutorSpec,
    Job,
    JobsFailedError,
    JobStatus,
    SerialExecutor,
    execute_job,
    raise_for_failures,
    run_jobs,
    summary_table,
)
from harness.runs import RunDir, RunKind

CALLS = []
ATTEMPTS = []


def add(a, b):
    CALLS.append((a, b))
    return a + b


def flaky(counter):
    ATTEMPTS.append(counter)
    if len(ATTEMPTS) < 3:
        raise OSError("transient")
    return "ok"


def bad_input():
    raise InputError("lr must be positive, got -1")


def write_run(out):
    run = RunDir(out, kind=RunKind.TRAIN)
    if run.completed_with({"x": 1}):
        return "reused"
    run.start("test", {"x": 1})
    run.finish()
    return "trained"


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()
    ATTEMPTS.clear()


def test_spec_parsing_rules(tmp_path):
    assert ExecutorSpec.parse().kind is ExecutorKind.SERIAL
    assert ExecutorSpec.parse(workers=2).kind is ExecutorKind.DASK  # --workers implies dask
    assert ExecutorSpec.parse("DASK").kind is ExecutorKind.DASK
    file = tmp_path / "scheduler.json"
    file.write_text('{"address": "tcp://127.0.0.1:8786"}')
    spec = ExecutorSpec.parse(scheduler_file=str(file))
    assert spec.kind is ExecutorKind.DASK and spec.scheduler_file == file
    for kwargs, message in [
        (dict(executor="threads"), "--executor must be one of"),
        (dict(executor="serial", workers=2), "need --executor dask"),
        (dict(workers=0), "--workers must be a positive integer"),
        (dict(scheduler="localhost:8786"), "tcp://HOST:PORT"),
        (dict(scheduler="tcp://h:1", scheduler_file=str(file)), "not both"),
        (dict(scheduler="tcp://h:1", workers=2), "has its own workers"),
        (dict(scheduler_file=str(tmp_path / "none.json")), "does not exist"),
        (dict(retries=-1), "--retries must be a non-negative integer"),
    ]:
        with pytest.raises(InputError, match=message):
            ExecutorSpec.parse(**kwargs)
    file.write_text("{}")
    with pytest.raises(InputError, match="records no scheduler 'address'"):
        ExecutorSpec.parse(scheduler_file=str(file))


def test_jobs_are_plain_data():
    Job("a", "harness.threads:available_cores")
    Job("a", add, {"a": 1, "b": 2})
    with pytest.raises(InputError, match="JSON-able"):
        Job("a", add, {"a": object(), "b": 2})
    with pytest.raises(InputError, match="top-level function"):
        Job("a", lambda: None)
    with pytest.raises(InputError, match="'package.module:function'"):
        Job("a", "harness.threads.available_cores")
    with pytest.raises(InputError, match="cannot be imported"):
        Job("a", "harness.threads:nothing_here")
    with pytest.raises(InputError, match="unique"):
        SerialExecutor().submit([Job("a", add), Job("a", add)])


def test_serial_runs_in_order_retries_unexpected_errors_and_reports_failures():
    jobs = [
        Job("sum", add, {"a": 1, "b": 2}),
        Job("input", bad_input),
        Job("flaky", flaky, {"counter": 0}),
    ]
    outcomes = run_jobs(SerialExecutor(retries=2), jobs, progress=False)
    by_key = {o.key: o for o in outcomes}
    assert [o.key for o in outcomes] == ["sum", "input", "flaky"]
    assert by_key["sum"].status is JobStatus.DONE and by_key["sum"].value == 3
    # a user error is the job's result: reported, not retried
    assert by_key["input"].status is JobStatus.FAILED and by_key["input"].retried == 0
    assert "InputError: lr must be positive" in by_key["input"].error
    assert by_key["flaky"].value == "ok" and by_key["flaky"].retried == 2
    with pytest.raises(JobsFailedError, match=r"1 of 3 members failed .*input: InputError") as info:
        raise_for_failures(outcomes, "members")
    assert len(info.value.outcomes) == 3
    table = summary_table(outcomes)
    assert table.splitlines()[0].split() == ["job", "status", "wall_s", "threads", "retried",
                                             "worker", "error"]  # fmt: skip
    assert table.splitlines()[2].split()[:2] == ["input", "failed"]
    assert table.splitlines()[-1] == "2 done, 1 failed"


def test_unexpected_errors_exhaust_their_retries():
    outcomes = run_jobs(SerialExecutor(retries=0), [Job("f", flaky, {"counter": 0})],
                        progress=False)  # fmt: skip
    assert outcomes[0].status is JobStatus.FAILED and outcomes[0].error == "OSError: transient"


def test_execute_job_locks_records_and_keeps_finished_runs(tmp_path):
    job = Job("member", write_run, {"out": str(tmp_path / "r")}, run_dir=str(tmp_path / "r"))
    first = execute_job(job)
    assert first.status is JobStatus.DONE and first.value == "trained"
    record = RunDir(tmp_path / "r").manifest()["job"]
    assert record["key"] == "member" and record["worker"] == "in-process"
    assert record["threads"]["torch_intra_op"] >= 1 and record["wall_s"] >= 0
    assert record["replaced_stale_lock"] is None
    again = execute_job(job)
    assert again.status is JobStatus.KEPT and again.value == "reused"
    assert not (tmp_path / "r" / "run.lock").exists()


def test_cli_executor_options_are_checked_before_work(run_cli, tiny_cohort, tmp_path):
    base = ("ensemble", "run", "--cohort", tiny_cohort, "--out", tmp_path / "e", "--factor",
            "seed=2", "--preset", "tiny", "--quiet")  # fmt: skip
    for extra, message in [
        (("--executor", "serial", "--workers", "2"), "need --executor dask"),
        (("--scheduler", "127.0.0.1:8786"), "tcp://HOST:PORT"),
        (("--scheduler-file", tmp_path / "missing.json"), "does not exist"),
    ]:
        code, _, err = run_cli(*base, *extra)
        assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "e").exists()


def test_a_failed_member_is_listed_after_the_others_finished(run_cli, tiny_cohort, tmp_path,
                                                             monkeypatch):  # fmt: skip
    import harness.ensemble.run as ensemble_run

    train_member = ensemble_run.train_member

    def failing(**kwargs):
        if kwargs["member"]["name"] == "seed-01":
            raise InputError("seed-01 diverged (a stand-in for a real job error)")
        return train_member(**kwargs)

    monkeypatch.setattr(ensemble_run, "train_member", failing)
    ens = tmp_path / "ens"
    args = ("ensemble", "run", "--cohort", tiny_cohort, "--out", ens, "--factor", "seed=2",
            "--preset", "tiny", "--epochs", "1", "--train-subjects", "1", "--quiet")  # fmt: skip
    code, out, err = run_cli(*args)
    assert code == 2 and "Traceback" not in err
    assert "1 of 3 members failed" in err and "seed-01: InputError: seed-01 diverged" in err
    assert "seed-01   failed" in err and "baseline  done" in err  # the summary table
    assert RunDir(ens).manifest()["status"] == "failed"
    for member in ("baseline", "seed-02"):  # every other member finished and was kept
        assert RunDir(ens / "members" / member).is_complete()
    monkeypatch.setattr(ensemble_run, "train_member", train_member)
    code, out, err = run_cli(*args)
    assert code == 0, err
    rows = {row["job"]: row["status"] for row in RunDir(ens).manifest()["jobs"]}
    assert rows == {"baseline": "kept", "seed-01": "done", "seed-02": "kept"}
