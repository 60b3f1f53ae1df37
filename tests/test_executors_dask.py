"""Ensembles (and a mode sweep) on a real Dask LocalCluster (worker processes on 127.0.0.1):
bitwise equal to the serial run, a worker killed mid-member is survived, a killed client's run resumes."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nibabel as nib
import pytest
import torch

from harness.ensemble import run_ensemble
from harness.executors.dask import DaskExecutor
from harness.experiments.mode_sweep import SweepConfig, run_mode_sweep
from harness.runs import RunDir
from harness.runs.lock import lock_path, process_alive, read_holder

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = ["baseline", "seed-01", "seed-02", "seed-03"]
PREDICT = ["sub-0003", "sub-0004"]


@pytest.fixture
def one_thread():
    """The serial run computes with one thread, as each job of two workers on two cores does."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _kwargs(epochs: int) -> dict:
    return dict(factors={"seed": 3}, preset="tiny", epochs=epochs, train_subjects=1,
                predict=PREDICT, batch_size=32, progress=False)  # fmt: skip


def _member(ens: Path, member: str) -> Path:
    return ens / "members" / member


def _member_bytes(ens: Path, member: str) -> dict[str, bytes]:
    """Every weight tensor and every predicted label map of a member, as raw bytes."""
    state = torch.load(_member(ens, member) / "checkpoints" / "axial.pt", weights_only=True)
    found = {f"w:{k}": v.cpu().numpy().tobytes() for k, v in state["model"].items()}
    for sid in PREDICT:
        image = nib.load(_member(ens, member) / "predictions" / f"{sid}_seg.nii.gz")
        found[f"p:{sid}"] = image.get_fdata(dtype="float64").tobytes()
    return found


def _epochs(ens: Path, member: str) -> list[int]:
    return [row["epoch"] for row in RunDir(_member(ens, member)).manifest()["history"]]


def test_dask_ensemble_equals_the_serial_run_bit_for_bit(tiny_cohort, tmp_path, one_thread):
    serial, dask = tmp_path / "serial", tmp_path / "dask"
    run_ensemble(tiny_cohort, serial, **_kwargs(1))
    sweep = SweepConfig(modes=("ieee", "ud"), repeats=2, steps=2)
    serial_sweep = run_mode_sweep(sweep)
    with DaskExecutor(2) as executor:
        assert executor.describe()["threads_per_job"] == 1
        run_ensemble(tiny_cohort, dask, executor=executor, **_kwargs(1))
        dask_sweep = run_mode_sweep(sweep, executor=executor)
    timing = ["step_ms", "step_time_vs_ieee"]
    assert serial_sweep.drop(columns=timing).equals(dask_sweep.drop(columns=timing))
    manifest = RunDir(dask).manifest()
    assert manifest["status"] == "complete" and manifest["executor"]["kind"] == "dask"
    workers = set()
    for member in MEMBERS:
        assert _member_bytes(serial, member) == _member_bytes(dask, member), member
        job = RunDir(_member(dask, member)).manifest()["job"]
        assert job["worker"].startswith("tcp://127.0.0.1:") and job["wall_s"] > 0
        assert job["threads"]["torch_intra_op"] == 1 and job["pid"] != os.getpid()
        workers.add(job["worker"])
    assert len(workers) == 2  # both worker processes trained members
    assert [row["status"] for row in manifest["jobs"]] == ["done"] * 4
    # different seeds still give different members: the comparison above can fail
    assert _member_bytes(dask, "seed-01") != _member_bytes(dask, "seed-02")


def _kill_when_training(ens: Path, killed: dict, stop: threading.Event) -> None:
    """SIGKILL the worker process holding the lock of the first member seen mid-training
    (one epoch checkpointed, not finished)."""
    while not stop.is_set():
        for member in MEMBERS:
            folder = _member(ens, member)
            holder = read_holder(lock_path(folder))
            if holder is None or not (folder / "checkpoints" / "axial.pt").exists():
                continue
            if RunDir(folder).is_complete() or holder.pid == os.getpid():
                continue
            os.kill(holder.pid, signal.SIGKILL)
            killed[member] = holder.pid
            return
        time.sleep(0.02)


def test_a_worker_killed_mid_member_is_survived_without_duplicates(tiny_cohort, tmp_path):
    ens, killed, stop = tmp_path / "ens", {}, threading.Event()
    killer = threading.Thread(target=_kill_when_training, args=(ens, killed, stop))
    killer.start()
    try:
        with DaskExecutor(2) as executor:
            run_ensemble(tiny_cohort, ens, executor=executor, **_kwargs(6))
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 1, killed
    (member, pid), = killed.items()
    assert not process_alive(pid)
    manifest = RunDir(ens).manifest()
    assert manifest["status"] == "complete" and manifest["finished_members"] == MEMBERS
    rows = {row["job"]: row for row in manifest["jobs"]}
    assert rows[member]["status"] == "done" and rows[member]["retried"] >= 1
    for name in MEMBERS:  # every member complete, each epoch trained into it once
        record = RunDir(_member(ens, name)).manifest()
        assert record["status"] == "complete" and _epochs(ens, name) == [1, 2, 3, 4, 5, 6]
        assert not lock_path(_member(ens, name)).exists()
    resumed = RunDir(_member(ens, member)).manifest()
    assert resumed["attempts"] == 2  # resumed from its checkpoint, not restarted elsewhere
    assert f"pid {pid} " in resumed["job"]["replaced_stale_lock"]


def test_a_killed_client_then_the_same_command_resumes(run_cli, tiny_cohort, tmp_path):
    ens = tmp_path / "ens"
    args = ["ensemble", "run", "--cohort", str(tiny_cohort), "--out", str(ens), "--factor",
            "seed=3", "--preset", "tiny", "--epochs", "6", "--train-subjects", "1",
            "--batch-size", "32", "--workers", "2", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "client.log", "w")  # noqa: SIM115 - closed below
    client = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and client.poll() is None:
        complete = [m for m in MEMBERS if RunDir(_member(ens, m)).is_complete()]
        partial = [m for m in MEMBERS if m not in complete
                   and (_member(ens, m) / "checkpoints" / "axial.pt").exists()]  # fmt: skip
        if complete and partial:
            break
        time.sleep(0.02)
    assert client.poll() is None, "the ensemble finished before the client could be killed"
    client.send_signal(signal.SIGKILL)
    client.wait()
    log.close()
    # its local workers go with it: no lock of the killed run is held by a live process
    deadline = time.time() + 60
    holders = [read_holder(lock_path(_member(ens, m))) for m in MEMBERS]
    while time.time() < deadline and any(h and process_alive(h.pid) for h in holders):
        time.sleep(0.2)
    assert not any(h and process_alive(h.pid) for h in holders)
    assert RunDir(ens).manifest()["status"] == "running"  # never read as complete
    # what the kill left (a member may have finished between the last look and the kill)
    complete = [m for m in MEMBERS if RunDir(_member(ens, m)).is_complete()]
    stamps = {m: (_member(ens, m) / "checkpoints" / "axial.pt").stat().st_mtime_ns
              for m in complete}  # fmt: skip
    resumed = {m: RunDir(_member(ens, m)).manifest().get("history", []) for m in MEMBERS
               if m not in complete and RunDir(_member(ens, m)).exists()}  # fmt: skip
    assert complete and len(complete) < len(MEMBERS)

    code, out, err = run_cli(*args)
    assert code == 0, err
    manifest = RunDir(ens).manifest()
    assert manifest["status"] == "complete" and manifest["attempts"] == 2
    rows = {row["job"]: row["status"] for row in manifest["jobs"]}
    for member in complete:  # finished members are kept, not retrained
        assert rows[member] == "kept"
        assert (_member(ens, member) / "checkpoints" / "axial.pt").stat().st_mtime_ns == stamps[member]
    assert any(resumed.values()), "no member was half-written when the client died"
    for member, before in resumed.items():  # half-written members resumed after their checkpoint
        record = RunDir(_member(ens, member)).manifest()
        assert rows[member] == "done" and record["attempts"] == 2
        assert record["history"][: len(before)] == before  # finished epochs not trained again
    for member in MEMBERS:
        assert _epochs(ens, member) == [1, 2, 3, 4, 5, 6]
    assert "kept" in out and json.loads((ens / "manifest.json").read_text())["executor"]["workers"] == 2


def test_demo_runs_its_sweep_and_ensemble_on_dask(run_cli, tmp_path, monkeypatch):
    from harness.experiments import demo as demo_mod

    stages = dict(demo_mod.STAGES)
    monkeypatch.setattr(demo_mod, "STAGES", [(name, stages[name]) for name in
                                             ("mode-sweep", "cohort", "ensemble")])  # fmt: skip
    out = tmp_path / "demo"
    code, stdout, err = run_cli("demo", "--size", "tiny", "--out", out, "--executor", "dask",
                                "--workers", "2")  # fmt: skip
    assert code == 0, err
    assert "dask: 2 workers at tcp://127.0.0.1:" in err and "1 threads per job" in err
    ensemble = RunDir(out / "ensemble").manifest()
    assert ensemble["status"] == "complete" and ensemble["executor"]["workers"] == 2
    workers = {RunDir(p).manifest()["job"]["worker"] for p in (out / "ensemble/members").iterdir()}
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
    assert RunDir(out / "mode-sweep").is_complete()
