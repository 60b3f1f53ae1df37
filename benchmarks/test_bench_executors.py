"""Ensemble wall time: serial (one process, 2 compute threads; and, for context, 1 thread) vs a
Dask LocalCluster of 2 workers (1 compute thread per job), all in one run.

Run: ``python -m pytest benchmarks/test_bench_executors.py --benchmark-json OUT.json``.

Each round trains a fresh 4-member ensemble (``seed=3``: baseline + 3 seed members; FastSurferCNN
preset ``tiny``, axial, :data:`EPOCHS` epochs, one training subject, two predicted subjects of a
24^3 synthetic cohort) into a new folder. The cluster is started once, outside the timed rounds,
and warmed by one untimed round (its workers import torch then). Each record's ``extra_info``
holds the executor, the threads per job, the load averages before and after, the ratios of the
serial medians to this case's median (``speedup_vs_serial`` against 2 threads,
``speedup_vs_serial_1_thread``) and the environment fingerprint.
Members differ between the two cases only by their compute thread count (2 vs 1), which may
change floating-point reduction order; bitwise equality at equal threads is a test
(``tests/test_executors_dask.py``), not this benchmark.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from harness.fingerprint import fingerprint
from harness.threads import available_cores, load_average

EPOCHS = 3
ROUNDS = 3
WORKERS = 2
_MEDIANS: dict[str, float] = {}
_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    import tempfile
    from pathlib import Path

    from harness.data.synth import generate_cohort

    root = tmp_path_factory.mktemp("bench-executors") / "cohort"
    cache = Path(tempfile.gettempdir()) / "harness-test-cache"
    generate_cohort(4, root, seed=0, grid=24, cache_dir=cache, progress=False)
    return root


@pytest.fixture(scope="module")
def dask_executor():
    from harness.executors.dask import DaskExecutor

    with DaskExecutor(WORKERS) as executor:
        yield executor


def _train(cohort, out, executor):
    from harness.ensemble import run_ensemble

    run_ensemble(cohort, out, {"seed": 3}, preset="tiny", epochs=EPOCHS, train_subjects=1,
                 predict=["sub-0003", "sub-0004"], batch_size=32, progress=False,
                 executor=executor)  # fmt: skip


CASES = {"serial-1-thread": 1, "serial-2-threads": 2, "dask-2x1": 1}


@pytest.mark.parametrize("case", list(CASES))
def test_bench_ensemble_wall_time(benchmark, request, cohort, tmp_path, case):
    from harness.executors import SerialExecutor

    dask = case.startswith("dask")
    executor = request.getfixturevalue("dask_executor") if dask else SerialExecutor()
    previous = torch.get_num_threads()
    torch.set_num_threads(CASES[case])  # a benchmark is an edge, like the CLI
    try:
        _train(cohort, tmp_path / "warm", executor)  # untimed: imports, first allocations

        def fresh():
            return (cohort, tmp_path / f"ens-{next(_COUNTER)}", executor), {}

        load_before = load_average()
        benchmark.pedantic(_train, setup=fresh, rounds=ROUNDS, iterations=1)
        load_after = load_average()
    finally:
        torch.set_num_threads(previous)
    _MEDIANS[case] = benchmark.stats.stats.median
    serial, single = _MEDIANS.get("serial-2-threads"), _MEDIANS.get("serial-1-thread")
    benchmark.extra_info.update(
        {
            "executor": executor.describe(),
            "members": 4,
            "epochs": EPOCHS,
            "threads_per_job": CASES[case],
            "cores_available": available_cores(),
            "load_avg_1m_before": load_before,
            "load_avg_1m_after": load_after,
            "rounds": ROUNDS,
            "speedup_vs_serial": (serial / _MEDIANS[case]) if serial else None,
            "speedup_vs_serial_1_thread": (single / _MEDIANS[case]) if single else None,
            "fingerprint": fingerprint(),
        }
    )
