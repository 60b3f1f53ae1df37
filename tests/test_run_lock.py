"""Run-directory locks under concurrency: two processes racing for one directory, stale locks."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.runs import RunDir, RunKind, RunLock, RunLockedError
from harness.runs.lock import is_stale, lock_path, read_holder

ROOT = Path(__file__).resolve().parents[1]

#: a process that waits for GO, then runs one job writing RUN (a fake training: start, 1.5 s of
#: "work", finish) and prints the job's status
RACER = """
import sys, time
from pathlib import Path
from harness.executors import Job, execute_job
from harness.runs import RunDir, RunKind

def fake_training(out):
    run = RunDir(out, kind=RunKind.TRAIN)
    if run.completed_with({"a": 1}):
        return
    run.start("test", {"a": 1})
    with open(Path(out) / "work.txt", "a") as fh:
        fh.write("written once\\n")
    time.sleep(1.5)
    run.finish()

run, go = sys.argv[1], Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
outcome = execute_job(Job("member", fake_training, {"out": run}, run_dir=run))
print(outcome.status.value, outcome.error or "")
"""

#: a process that takes the lock without waiting and holds it for 2 s
HOLDER = """
import sys, time
from pathlib import Path
from harness.runs import RunLock, RunLockedError
run, go = sys.argv[1], Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
try:
    with RunLock(run, wait_s=0):
        print("acquired", flush=True)
        time.sleep(2)
except RunLockedError as exc:
    print("locked", exc)
"""


def _race(code: str, run: Path, tmp_path: Path) -> list[str]:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(run), str(go)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for _ in range(2)
    ]
    time.sleep(1.0)  # both importing and polling for the start signal
    go.touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out.strip())
    return sorted(outs)


def test_two_processes_racing_for_one_directory_never_both_hold_it(tmp_path):
    outs = _race(HOLDER, tmp_path / "run", tmp_path)
    assert outs[0] == "acquired" and outs[1].startswith("locked"), outs
    assert "is being written by pid" in outs[1] and socket.gethostname() in outs[1]
    assert not lock_path(tmp_path / "run").exists()  # released by the winner


def test_racing_jobs_train_once_and_the_second_keeps_the_finished_run(tmp_path):
    run = tmp_path / "run"
    outs = _race(RACER, run, tmp_path)
    assert outs == ["done", "kept"], outs
    manifest = RunDir(run).manifest()
    assert manifest["status"] == "complete" and manifest["attempts"] == 1
    assert manifest["job"]["key"] == "member" and manifest["job"]["wall_s"] > 1
    assert (run / "work.txt").read_text() == "written once\n"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(run: Path, pid: int, host: str, age_s: float = 0.0) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    path = lock_path(run)
    path.write_text(json.dumps({"pid": pid, "host": host, "started": time.time() - age_s,
                                "token": "x"}))  # fmt: skip
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_a_lock_of_a_dead_process_on_this_host_is_broken(tmp_path):
    pid = _dead_pid()
    _write_lock(tmp_path / "run", pid, socket.gethostname())
    with RunLock(tmp_path / "run", wait_s=1) as lock:
        assert lock.broke is not None and lock.broke.pid == pid
        assert read_holder(lock.path).pid == os.getpid()
    assert not lock.path.exists()


def test_a_live_lock_of_another_host_is_kept_until_its_heartbeat_is_old(tmp_path):
    _write_lock(tmp_path / "run", 1, "another-host")
    with pytest.raises(RunLockedError, match="pid 1 on another-host"):
        RunLock(tmp_path / "run", wait_s=0.3).acquire()
    _write_lock(tmp_path / "run", 1, "another-host", age_s=600)
    with RunLock(tmp_path / "run", wait_s=1, stale_after_s=120) as lock:
        assert lock.broke.host == "another-host"


def test_stale_rule():
    from harness.runs.lock import LockHolder

    here = socket.gethostname()
    alive = LockHolder(os.getpid(), here, 0.0, "t")
    assert not is_stale(alive, age_s=1, stale_after_s=120)
    assert is_stale(alive, age_s=121, stale_after_s=120)  # heartbeat stopped: pid reused
    assert is_stale(LockHolder(_dead_pid(), here, 0.0, "t"), age_s=1, stale_after_s=120)
    assert not is_stale(LockHolder(_dead_pid(), "elsewhere", 0.0, "t"), 1, 120)
    assert not is_stale(None, age_s=1, stale_after_s=120)  # being written this instant


def test_heartbeat_refreshes_a_held_lock(tmp_path):
    with RunLock(tmp_path / "run", heartbeat_s=0.1) as lock:
        first = lock.path.stat().st_mtime_ns
        time.sleep(0.5)
        assert lock.path.stat().st_mtime_ns > first
    assert RunDir(tmp_path / "run", kind=RunKind.TRAIN).path.is_dir()
