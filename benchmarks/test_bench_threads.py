"""One training epoch with ``--threads 1`` vs all cores, while a CPU-bound process competes.

Run: ``python -m pytest benchmarks/test_bench_threads.py --benchmark-json OUT.json``.

A tiny FastSurferCNN (preset ``tiny``, axial view) trains one epoch on two synthetic 24^3
subjects; each round is one epoch. During the whole module a competitor process spins on one
core (bounded: it stops by itself after :data:`COMPETITOR_SECONDS` and is killed at teardown).
Each record's ``extra_info`` has the thread count, the competitor, the load averages before and
after, the ratio of the all-cores epoch to the one-thread epoch and the environment fingerprint
(whose ``threads`` entry records the policy in effect).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from harness.fingerprint import fingerprint
from harness.threads import available_cores, load_average, thread_record

COMPETITOR_SECONDS = 600
ROUNDS = 5
CASES = {"threads-1": 1, "all-cores": available_cores()}
_MEDIANS: dict[str, float] = {}

SPIN = (
    "import time\n"
    f"deadline = time.time() + {COMPETITOR_SECONDS}\n"
    "x = 0\n"
    "while time.time() < deadline:\n"
    "    x = (x * 1103515245 + 12345) % 2147483648\n"
)


@pytest.fixture(scope="module")
def competitor():
    """One CPU-bound process spinning on a core for the whole module (stops by itself)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", SPIN], env=env)
    time.sleep(1.0)  # let it reach the run queue
    try:
        yield {"processes": 1, "kind": "python integer loop", "pid": proc.pid}
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    import tempfile
    from pathlib import Path

    from harness.data.cohort import load_cohort
    from harness.data.synth import generate_cohort
    from harness.train import TrainConfig, ViewTrainer
    from harness.train.run import _load_training

    root = tmp_path_factory.mktemp("bench-threads") / "cohort"
    cache = Path(tempfile.gettempdir()) / "harness-test-cache"
    generate_cohort(2, root, seed=0, grid=24, cache_dir=cache, progress=False)
    cohort = load_cohort(root)
    images, labels = _load_training(cohort, cohort.ids)
    config = TrainConfig(views=("axial",), preset="tiny", epochs=10_000, batch_size=16)
    checkpoint = root.parent / "axial.pt"
    return ViewTrainer(config, "axial", images, labels, checkpoint, progress=False)


@pytest.mark.parametrize("case", list(CASES))
def test_bench_epoch_under_competition(benchmark, competitor, trainer, case):
    threads = CASES[case]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # a benchmark is an edge, like the CLI
    load_before = load_average()
    try:
        benchmark.pedantic(trainer.train_epoch, rounds=ROUNDS, iterations=1, warmup_rounds=1)
        record = thread_record()
    finally:
        torch.set_num_threads(previous)
    _MEDIANS[case] = benchmark.stats.stats.median
    one = _MEDIANS.get("threads-1")
    benchmark.extra_info.update(
        {
            "threads": threads,
            "thread_record": record,
            "cores_available": available_cores(),
            "competitor": {k: v for k, v in competitor.items() if k != "pid"},
            "load_avg_1m_before": load_before,
            "load_avg_1m_after": load_average(),
            "rounds": ROUNDS,
            "epoch_samples": len(trainer.dataset),
            "median_ratio_vs_threads_1": (_MEDIANS[case] / one) if one else None,
            "fingerprint": fingerprint(),
        }
    )
