"""The DuckDB results database: ingest, incremental updates, incomplete runs, queries, CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import InputError
from harness.store import RunDir
from harness.store.db import ResultsDB, load_results
from harness.store.extract import match_key

FIXTURES = Path(__file__).parent / "data" / "store"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def results_copy(tmp_path):
    dest = tmp_path / "results"
    shutil.copytree(FIXTURES, dest, ignore=shutil.ignore_patterns("*.py"))
    return dest


def test_query_across_devices():
    db = load_results([FIXTURES])
    per_device = db.query(
        "SELECT device_name, count(*) AS n FROM benchmarks GROUP BY device_name ORDER BY 1"
    )
    assert per_device["device_name"].tolist() == [
        "Fixture CPU",
        "NVIDIA H100 80GB HBM3 (test fixture)",
    ]
    assert per_device["n"].tolist() == [4, 4]
    # the same benchmark on both devices, matched by its device-free key
    pairs = db.query(
        "SELECT c.match_key, c.mean_s / g.mean_s AS speedup, "
        "g.sig_bits_mean - c.sig_bits_mean AS bits_delta "
        "FROM benchmarks c JOIN benchmarks g USING (match_key) "
        "WHERE c.device = 'cpu' AND g.device = 'cuda' ORDER BY 1"
    )
    assert len(pairs) == 4
    assert pairs["speedup"].between(15, 25).all()  # fixtures: GPU times are 0.05x the CPU ones
    assert pairs["bits_delta"].dropna().tolist() == pytest.approx([-1.0, -1.0])


def test_match_key_blanks_device_words_only():
    assert match_key("test_conv2d_forward[cpu-small-3x3-torch]") == match_key(
        "test_conv2d_forward[cuda-small-3x3-torch]"
    )
    assert match_key("test_bench_training_step_cpu[sr]") == "test_bench_training_step_*[sr]"
    assert match_key("test_cpuset[gpus]") == "test_cpuset[gpus]"


def test_runs_metrics_and_incomplete_run():
    db = load_results([FIXTURES / "runs"])
    runs = db.query("SELECT run_id, kind, status FROM runs ORDER BY run_id")
    assert set(runs["kind"]) >= {"mode-sweep", "granularity", "ensemble-analysis", "brainage"}
    crashed = runs[runs["run_id"].str.endswith("crashed-sweep")]
    assert crashed["status"].tolist() == ["running"]
    counts = db.query("SELECT run_id, count(*) AS n FROM metrics GROUP BY run_id")
    assert not counts["run_id"].str.endswith("crashed-sweep").any()
    rr = db.query(
        "SELECT value FROM metrics WHERE table_name = 'sweep.tsv' "
        "AND metric = 'weights_sig_bits_median' AND json_extract_string(key_json, '$.mode') = 'rr'"
    )
    assert rr["value"].tolist() == [19.0]
    hippo = db.query(
        "SELECT value FROM metrics WHERE metric = 'mean_min_dice' "
        "AND labels LIKE '%factor=seed%Left-Hippocampus%'"
    )
    assert hippo["value"].tolist() == [0.8]
    assert db.query("SELECT count(*) AS n FROM spectra")["n"].item() == 16


def test_incremental_ingest(results_copy, tmp_path):
    db_path = tmp_path / "r.duckdb"
    with ResultsDB(db_path) as db:
        first = db.ingest([results_copy], progress=False)
        assert len(first.benchmark_files_new) == 2 and len(first.runs_new) == 6
        n_metrics = db.query("SELECT count(*) AS n FROM metrics")["n"].item()

    with ResultsDB(db_path) as db:  # reopened: state persists in the file
        again = db.ingest([results_copy], progress=False)
        assert again.changed == 0 and again.benchmark_files_unchanged == 2
        assert again.runs_unchanged == 6

        # same bytes, new mtime: hashed, found identical, not re-read
        sweep = results_copy / "runs" / "mode-sweep" / "sweep.tsv"
        os.utime(sweep, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert db.ingest([results_copy], progress=False).changed == 0

        # a new file and a changed table: only those are read
        extra = json.loads((results_copy / "bench-cpu-fixture.json").read_text())
        extra["benchmarks"] = extra["benchmarks"][:1]
        (results_copy / "new-bench.json").write_text(json.dumps(extra))
        frame = pd.read_csv(sweep, sep="\t")
        frame.loc[frame["mode"] == "rr", "weights_sig_bits_median"] = 7.0
        frame.to_csv(sweep, sep="\t", index=False)
        third = db.ingest([results_copy], progress=False)
        assert len(third.benchmark_files_new) == 1 and third.benchmark_rows == 1
        assert third.runs_updated == ["results/runs/mode-sweep"] and not third.runs_new
        assert db.query("SELECT count(*) AS n FROM metrics")["n"].item() == n_metrics
        value = db.query(
            "SELECT value FROM metrics WHERE metric = 'weights_sig_bits_median' "
            "AND labels = 'mode=rr'"
        )
        assert value["value"].tolist() == [7.0]

        # a run deleted from disk is forgotten, with its metrics
        shutil.rmtree(results_copy / "runs" / "granularity")
        fourth = db.ingest([results_copy], progress=False)
        assert fourth.removed == [str(results_copy.resolve() / "runs" / "granularity")]
        gone = db.query("SELECT count(*) AS n FROM metrics WHERE table_name = 'granularity.tsv'")
        assert gone["n"].item() == 0 and len(db.table("runs")) == 5


WRITER = """
import sys
from pathlib import Path
import pandas as pd
from harness.store import RunDir

run = RunDir(sys.argv[1], kind="mode-sweep")
run.start("harness sweep", {"modes": ["rr"]})
frame = pd.DataFrame({"mode": ["rr"] * 50000, "weights_sig_bits_min": range(50000)})
i = 0
while True:  # rewrite the tables until killed, so that SIGKILL lands in the middle of a write
    run.write_table("sweep.tsv", frame)
    run.write_table("granularity.tsv", frame.rename(columns={"mode": "granularity"}))
    if i == 0:
        Path(sys.argv[2]).touch()
    i += 1
"""


def test_killed_writer_leaves_no_complete_result(tmp_path):
    run_dir, ready = tmp_path / "root" / "killed", tmp_path / "ready"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), str(ready)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, "writer died before writing"
            assert time.monotonic() < deadline, "writer never got going"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    run = RunDir(run_dir)
    assert run.exists() and not run.is_complete()
    assert run.manifest()["status"] == "running"
    # what is there under a final name is whole (atomic rename); temp files start with a dot
    assert len(pd.read_csv(run_dir / "sweep.tsv", sep="\t")) == 50000
    db = load_results([tmp_path / "root"])
    assert db.query("SELECT status FROM runs")["status"].tolist() == ["running"]
    assert db.query("SELECT count(*) AS n FROM metrics")["n"].item() == 0


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_results([tmp_path / "missing"])
    not_bench = tmp_path / "x.json"
    not_bench.write_text('{"a": 1}')
    with pytest.raises(InputError, match="not a pytest-benchmark JSON"):
        load_results([not_bench])
    with pytest.raises(InputError, match="query failed"):
        load_results([FIXTURES]).query("SELECT nope FROM benchmarks")
    with pytest.raises(InputError, match="no results database"):
        ResultsDB(tmp_path / "absent.duckdb", read_only=True)
    old = tmp_path / "old.duckdb"
    with ResultsDB(old) as db:
        db.con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(InputError, match="schema 0, this harness uses 1: delete the file"):
        ResultsDB(old)


def test_results_cli(run_cli, results_copy, tmp_path):
    db = tmp_path / "cli.duckdb"
    code, out, err = run_cli("results", "ingest", results_copy, "--db", db, "--quiet")
    assert code == 0, err
    assert "2 new" in out and "1 not complete" in out
    code, out, _ = run_cli("results", "list", "--db", db)
    assert code == 0 and "crashed-sweep" in out and "running" in out
    assert "bench-cuda-fixture.json" in out
    code, out, _ = run_cli(
        "results", "query", "SELECT device, count(*) AS n FROM benchmarks GROUP BY 1 ORDER BY 1",
        "--db", db, "--format", "json",
    )  # fmt: skip
    assert code == 0 and json.loads(out) == [{"device": "cpu", "n": 4}, {"device": "cuda", "n": 4}]
    code, out, err = run_cli("results", "query", "SELEC 1", "--db", db)
    assert code == 2 and "error: query failed" in err and "Traceback" not in err
    code, _, err = run_cli("results", "list", "--db", tmp_path / "none.duckdb")
    assert code == 2 and "harness results ingest" in err


def test_training_history_is_ingested(tmp_path):
    run = RunDir(tmp_path / "runs" / "member", kind="train")
    run.start("harness train", {"epochs": 2})
    history = pd.DataFrame(
        {"view": ["axial", "axial"], "epoch": [1, 2], "loss": [3.5, 2.25], "lr": [0.01, 0.01]}
    )
    run.write_table("history.tsv", history)
    run.finish()
    with load_results([tmp_path / "runs"]) as db:
        rows = db.query(
            "SELECT value FROM metrics WHERE table_name = 'history.tsv' AND metric = 'loss' "
            "ORDER BY value"
        )
    assert rows["value"].tolist() == [2.25, 3.5]


def test_an_unnamed_container_is_not_part_of_the_device_label():
    """A process in a container harness did not build cannot name its image: its records are
    labelled by the device alone, not by a placeholder image."""
    from harness.fingerprint import UNKNOWN_IMAGE
    from harness.store.extract import device_name, image_fields

    env = {"cpu_model": "Some CPU", "container_image": UNKNOWN_IMAGE}
    fields = image_fields(None, None, env)
    assert fields["image"] is None
    assert device_name(env, fields["image"]) == "Some CPU"
    named = image_fields(None, None, env | {"container_image": "harness/standard:x"})
    assert device_name(env, named["image"]) == "Some CPU [harness/standard:x]"
