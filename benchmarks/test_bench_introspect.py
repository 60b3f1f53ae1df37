"""Training-step time with a SpectralProbe (all layers, 2 groups, top-10, every step) vs without.

Run: ``python -m pytest benchmarks/test_bench_introspect.py --benchmark-json OUT.json``.
Times are per training step, each round averaging 10 consecutive steps. Each record's ``extra_info`` has the model, device, probe setting, batch shape, the ratio of its
minimum time to the unprobed step's and the environment fingerprint. CUDA cases run when a GPU
is present (marked ``cuda``; the design goal there is <= 1.2x).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.fingerprint import fingerprint
from harness.introspect import SpectralProbe

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
PROBES = {"none": None, "every-1": 1, "every-10": 10}
SETTINGS = {
    "cnn": {"cpu": {"batch": 32, "rounds": 8}, "cuda": {"batch": 128, "rounds": 5}},
    "mlp": {"cpu": {"batch": 128, "rounds": 15}, "cuda": {"batch": 512, "rounds": 10}},
}
#: CPU runs use one thread: on a shared machine, oversubscribed OpenMP threads spin and turn
#: millisecond steps into hundreds of milliseconds, which no number of rounds averages away
CPU_THREADS = 1
STEPS_PER_ROUND = 10
_PLAIN_MIN: dict[tuple[str, str], float] = {}


def _model(kind: str) -> tuple[nn.Module, tuple[int, ...]]:
    """A small CNN on 3x32x32 images or an MLP on 784 features; both 10 classes."""
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(), nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10),
        ), (3, 32, 32)  # fmt: skip
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
    ), (784,)


def _run(benchmark, kind: str, device: str, probe_name: str):
    cfg = SETTINGS[kind][device]
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(CPU_THREADS)
    try:
        _measure(benchmark, kind, device, probe_name, cfg)
    finally:
        torch.set_num_threads(threads)


def _measure(benchmark, kind: str, device: str, probe_name: str, cfg: dict):
    torch.manual_seed(0)
    model, shape = _model(kind)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(cfg["batch"], *shape, device=device, generator=gen)
    y = torch.randint(0, 10, (cfg["batch"],), device=device, generator=gen)
    groups = torch.arange(cfg["batch"]) % 2
    every = PROBES[probe_name]
    probe = SpectralProbe(model, top_k=10, every=every) if every else None

    def step():
        if probe:
            probe.set_groups(groups)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if probe:
            probe.step()  # rows stay in memory, as within an epoch of a real run
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    if probe:
        probe.attach()
    try:
        # a round is STEPS_PER_ROUND consecutive steps, so "every-10" pays its probed step once
        # per round: the per-step time is the amortised cost, not the cost of an unprobed step
        benchmark.pedantic(step, rounds=cfg["rounds"], iterations=STEPS_PER_ROUND, warmup_rounds=1)
    finally:
        if probe:
            probe.close()
    best = benchmark.stats.stats.min
    if probe_name == "none":
        _PLAIN_MIN[(kind, device)] = best
    plain = _PLAIN_MIN.get((kind, device))
    benchmark.extra_info.update(
        {
            "model": kind,
            "device": device,
            "probe": probe_name,
            "groups": 2,
            "top_k": 10,
            "batch": cfg["batch"],
            "steps_per_round": STEPS_PER_ROUND,
            "cpu_threads": torch.get_num_threads() if device == "cpu" else None,
            "input_shape": list(shape),
            "ratio_vs_plain": best / plain if plain else None,
            "fingerprint": fingerprint(),
        }
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("probe_name", list(PROBES))
@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_bench_training_step_with_probe(benchmark, kind, probe_name, device):
    _run(benchmark, kind, device, probe_name)
