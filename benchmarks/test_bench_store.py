"""Speed of the results database and the report.

Run: ``python -m pytest benchmarks/test_bench_store.py --benchmark-json OUT.json``.
A synthetic tree of ``N_RUNS`` complete run directories (one ``sweep.tsv`` each, 4 modes x 7
metrics) plus the committed benchmark files is ingested from scratch, then again with nothing
changed (the incremental path: stat, no hashing, no parsing); the report is built from the
committed CPU results.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.fingerprint import fingerprint
from harness.report import build_report
from harness.store.db import ResultsDB

ROOT = Path(__file__).resolve().parent.parent
N_RUNS = 100


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store-bench")
    frame = pd.DataFrame({
        "mode": ["ieee", "rr", "sr", "ud"], "runs": [2, 3, 3, 3],
        "weights_sig_bits_min": [24.0, 12, 13, 11], "weights_sig_bits_median": [24.0, 19, 19, 18],
        "weights_sig_bits_mean": [24.0, 18, 18, 17], "final_loss_sig_bits": [24.0, 16, 17, 15],
        "step_ms": [10.0, 60, 45, 15]})  # fmt: skip
    manifest = {"kind": "mode-sweep", "command": "harness sweep", "status": "complete",
                "started": 0.0, "environment": fingerprint()}  # fmt: skip
    for i in range(N_RUNS):
        run = root / f"run-{i:03d}"
        run.mkdir()
        (run / "manifest.json").write_text(json.dumps(manifest))
        frame.to_csv(run / "sweep.tsv", sep="\t", index=False)
    for path in (ROOT / "results").glob("bench-*.json"):
        shutil.copy(path, root / path.name)
    return root


def _record(benchmark, **extra) -> None:
    benchmark.extra_info.update({"device": "cpu", "n_runs": N_RUNS, "fingerprint": fingerprint()})
    benchmark.extra_info.update(extra)


def test_ingest_from_scratch(benchmark, tree, tmp_path):
    counter = itertools.count()

    def setup():
        return (tmp_path / f"db-{next(counter)}.duckdb",), {}

    def ingest(path):
        with ResultsDB(path) as db:
            return db.ingest([tree], progress=False)

    summary = benchmark.pedantic(ingest, setup=setup, rounds=3, iterations=1)
    assert len(summary.runs_new) == N_RUNS
    _record(benchmark, operation="ingest-full", metric_rows=summary.metric_rows)


def test_ingest_nothing_changed(benchmark, tree, tmp_path):
    path = tmp_path / "db.duckdb"
    with ResultsDB(path) as db:
        db.ingest([tree], progress=False)

    def ingest():
        with ResultsDB(path) as db:
            return db.ingest([tree], progress=False)

    summary = benchmark.pedantic(ingest, rounds=5, iterations=1)
    assert summary.changed == 0
    _record(benchmark, operation="ingest-unchanged")


def test_report_of_committed_results(benchmark, tmp_path):
    out = tmp_path / "report.html"
    benchmark.pedantic(build_report, args=([ROOT / "results"], out), rounds=3, iterations=1)
    _record(benchmark, operation="report", html_bytes=out.stat().st_size)
