"""Inference time of the published FastSurferCNN on full-size slices under each perturbation mode.

Run: ``python -m pytest benchmarks/test_bench_segment.py --benchmark-json OUT.json``.
One forward pass (eval mode, softmax, no gradient) of the full-width network (64 filters, 5x5,
depth 4, 79 classes) on a batch of ``BATCH`` thick slices of 256x256 (1 mm, the conformed grid):
what ``harness segment`` does 768 times per subject and view set (256 slices x 3 views). CPU runs
use one thread. ``extra_info`` has the mode, the per-slice time, the ratio to ``ieee`` and the
fingerprint.
"""

from __future__ import annotations

import pytest
import torch

from harness.fingerprint import fingerprint
from harness.models import FastSurferCNN, fastsurfer_config
from harness.perturb import StochasticArithmetic

MODES = ["ieee", "rr", "ud"]
BATCH = 2
SIZE = 256
CPU_THREADS = 1
#: an rr/sr pass over a 256^2 batch takes about a minute on one CPU core: one round each
ROUNDS = {"ieee": 3, "rr": 1, "ud": 1}
_IEEE_MIN: dict[str, float] = {}


@pytest.mark.parametrize("mode", MODES)
def test_full_slice_inference(benchmark, mode):
    threads = torch.get_num_threads()
    torch.set_num_threads(CPU_THREADS)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = FastSurferCNN(**fastsurfer_config("axial", "full")).eval()
            x = torch.rand(BATCH, 7, SIZE, SIZE)

        @torch.no_grad()
        def forward():
            if mode == "ieee":
                return torch.softmax(model(x), dim=1)
            with StochasticArithmetic(mode=mode, seed=0):
                return torch.softmax(model(x), dim=1)

        benchmark.pedantic(forward, rounds=ROUNDS[mode], iterations=1, warmup_rounds=0)
        best = benchmark.stats.stats.min
        if mode == "ieee":
            _IEEE_MIN["cpu"] = best
        benchmark.extra_info.update({
            "mode": mode, "device": "cpu", "batch": BATCH, "size": SIZE,
            "threads": torch.get_num_threads(), "seconds_per_slice": best / BATCH,
            "ratio_vs_ieee": best / _IEEE_MIN["cpu"] if "cpu" in _IEEE_MIN else None,
            "fingerprint": fingerprint(),
        })  # fmt: skip
    finally:
        torch.set_num_threads(threads)
