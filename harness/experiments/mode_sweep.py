"""Train a small CNN under each perturbation mode and measure the significant bits of the results.

For each mode, ``repeats`` trainings start from the same initial weights and see the same batches in
the same order; only the engine's random stream (its seed) differs between repeats. The
significant bits of the final weights and of the final loss are computed over the repeats against
the IEEE run (``harness.metrics.significant_bits``). ``ieee`` is run twice to show that it is
deterministic (its samples are identical, so it is reported at full precision).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from harness.errors import InputError
from harness.perturb.modes import Mode
from harness.perturb.seeds import torch_seed


@dataclass
class SweepConfig:
    """Settings of a mode sweep (defaults run in well under a minute on a laptop CPU)."""

    modes: Sequence[Mode | str] = tuple(Mode)
    repeats: int = 6
    steps: int = 15
    batch_size: int = 16
    image_size: int = 16
    seed: int = 0
    precision: int | None = None
    device: str = "cpu"
    lr: float = 1e-2
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.repeats < 2:
            raise InputError(f"repeats must be >= 2 to measure variability, got {self.repeats}")
        if self.steps < 1:
            raise InputError(f"steps must be >= 1, got {self.steps}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"device is {self.device!r} but CUDA is not available here")


def default_model() -> torch.nn.Module:
    """conv -> batchnorm -> PReLU -> max-pool -> conv -> batchnorm -> PReLU -> pool -> linear."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.PReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.PReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 4),
    )


def make_batches(cfg: SweepConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed synthetic classification task: labels from a random linear teacher."""
    gen = torch.Generator().manual_seed(cfg.seed + 12345)
    n = cfg.batch_size * cfg.steps
    x = torch.randn(n, 1, cfg.image_size, cfg.image_size, generator=gen)
    teacher = torch.randn(cfg.image_size * cfg.image_size, 4, generator=gen)
    y = (x.flatten(1) @ teacher).argmax(1)
    return [
        (x[i : i + cfg.batch_size], y[i : i + cfg.batch_size]) for i in range(0, n, cfg.batch_size)
    ]


def _context(mode: Mode | str, seed: int, precision: int | None):
    from harness.perturb import StochasticArithmetic

    return StochasticArithmetic(mode=mode, precision=precision, seed=seed)


def train_once(
    cfg: SweepConfig,
    mode: Mode | str,
    mca_seed: int,
    batches,
    model_factory: Callable[[], torch.nn.Module],
) -> dict:
    """One training run; returns final flat weights, per-step losses and mean step time."""
    with torch_seed(cfg.seed):  # identical initial weights for every run
        model = model_factory().to(cfg.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    losses, times = [], []
    for x, y in batches:
        x, y = x.to(cfg.device), y.to(cfg.device)
        start = time.perf_counter()
        with _context(mode, mca_seed, cfg.precision):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        if cfg.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    weights = torch.cat([p.detach().flatten().double().cpu() for p in model.parameters()])
    return {
        "weights": weights.numpy(),
        "losses": np.array(losses),
        "step_s": float(np.median(times)),
    }


def sweep_run(config: dict, mode: str, mca_seed: int,
              model_factory: Callable | None = None) -> dict:  # fmt: skip
    """One training of the sweep, as a job: rebuilds the batches from ``config`` (a
    :func:`config_dict`), so it runs the same in any process."""
    cfg = SweepConfig(**{**config, "modes": tuple(config["modes"])})
    batches = make_batches(cfg)
    return train_once(cfg, Mode.parse(mode), mca_seed, batches, model_factory or default_model)


def sweep_jobs(cfg: SweepConfig, modes: Sequence[Mode], model_factory: Callable | None = None):
    """The reference IEEE run and every (mode, repeat) run, as independent jobs (the mode
    travels as its value: jobs are plain data)."""
    from harness.executors import Job

    hooks = {} if model_factory is None else {"model_factory": model_factory}
    config = config_dict(cfg)
    func = "harness.experiments.mode_sweep:sweep_run"
    reference = {"config": config, "mode": Mode.IEEE.value, "mca_seed": 0}
    jobs = [Job("reference", func, reference, hooks=hooks)]
    for mode in modes:
        for r in range(2 if mode is Mode.IEEE else cfg.repeats):
            kwargs = {"config": config, "mode": mode.value, "mca_seed": cfg.seed * 1000 + r}
            jobs.append(Job(f"{mode.value}-{r + 1:02d}", func, kwargs, hooks=hooks))
    return jobs


def run_mode_sweep(cfg: SweepConfig, model_factory: Callable | None = None, executor=None,
                   outcomes: list | None = None):  # fmt: skip
    """Run the sweep and return a pandas DataFrame with one row per mode.

    ``executor`` (:mod:`harness.executors`) runs the trainings as independent jobs (default:
    one after another in this process; a custom ``model_factory`` needs that); the job
    outcomes are appended to ``outcomes`` when given. Failed runs raise
    :class:`~harness.executors.JobsFailedError` once every other run has finished.
    """
    import pandas as pd

    from harness.executors import SerialExecutor, raise_for_failures, run_jobs
    from harness.metrics import significant_bits, summarize

    cfg.validate()
    modes = [Mode.parse(m) for m in cfg.modes]
    jobs = sweep_jobs(cfg, modes, model_factory)
    done = run_jobs(executor or SerialExecutor(), jobs, desc="mode sweep")
    if outcomes is not None:
        outcomes.extend(done)
    raise_for_failures(done, "sweep runs")
    results = {o.key: o.value for o in done}
    reference = results["reference"]
    rows = []
    for mode in modes:
        n = 2 if mode is Mode.IEEE else cfg.repeats
        runs = [results[f"{mode.value}-{r + 1:02d}"] for r in range(n)]
        weights = np.stack([run["weights"] for run in runs])
        final_loss = np.array([[run["losses"][-1]] for run in runs])
        # identical samples get "all bits"; fp32 carries at most 24 of them
        w_bits = summarize(np.minimum(significant_bits(weights, reference["weights"]), 24))
        loss_bits = min(significant_bits(final_loss, [reference["losses"][-1]])[0], 24)
        rows.append(
            {
                "mode": mode.value,
                "runs": n,
                "identical_runs": bool(np.all(weights == weights[0])),
                "weights_sig_bits_min": w_bits["min"],
                "weights_sig_bits_median": w_bits["median"],
                "weights_sig_bits_mean": w_bits["mean"],
                "final_loss_mean": float(final_loss.mean()),
                "final_loss_sig_bits": float(loss_bits),
                "step_ms": 1e3 * float(np.median([run["step_s"] for run in runs])),
            }
        )
    frame = pd.DataFrame(rows)
    ieee_ms = frame.loc[frame["mode"] == Mode.IEEE.value, "step_ms"]
    if len(ieee_ms):
        frame["step_time_vs_ieee"] = frame["step_ms"] / float(ieee_ms.iloc[0])
    return frame


def config_dict(cfg: SweepConfig) -> dict:
    d = asdict(cfg)
    d["modes"] = [Mode.parse(m).value for m in cfg.modes]
    return d
