"""``harness sweep``: train a small CNN under each perturbation mode; significant bits table."""

from __future__ import annotations

import contextlib

import click

from harness.commands.options import OutputDir, executor_options, threads_option


@click.command()
@click.option("--modes", default="ieee,rr,sr,ud", show_default=True, help="Comma-separated modes.")
@click.option("--repeats", default=6, show_default=True, type=int, help="Runs per mode.")
@click.option("--steps", default=15, show_default=True, type=int, help="Training steps per run.")
@click.option("--precision", default=None, type=int, help="Virtual precision t (default: p).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--out", "-o", type=OutputDir(), help="Write sweep.tsv + manifest here."
)
@threads_option
@executor_options
def sweep(modes, repeats, steps, precision, device, seed, out, executor_spec) -> None:
    """Train a small CNN `repeats` times per mode (same init, same batches, only the engine's seed
    differs) and print the significant bits of the final weights and loss against IEEE.

    Each training is one job (--executor dask runs them on a Dask cluster)."""
    from harness.commands.options import echo_jobs, opened_executor
    from harness.executors import summary_rows
    from harness.experiments.mode_sweep import SweepConfig, config_dict, run_mode_sweep
    from harness.perturb import Mode
    from harness.runs import RunDir, RunKind
    from harness.runs.catalogue import SWEEP

    cfg = SweepConfig(
        modes=tuple(m.strip() for m in modes.split(",") if m.strip()),
        repeats=repeats, steps=steps, precision=precision, device=device, seed=seed,
    )  # fmt: skip
    cfg.validate()  # before any worker starts
    for mode in cfg.modes:
        Mode.parse(mode)
    run = RunDir(out, kind=RunKind.SWEEP) if out else None
    outcomes: list = []
    with opened_executor(executor_spec) as executor:
        if run:
            run.start("harness sweep", config_dict(cfg), executor=executor.describe())
        with run.failure_recorded() if run else contextlib.nullcontext():
            try:
                frame = run_mode_sweep(cfg, executor=executor, outcomes=outcomes)
            finally:
                if run and outcomes:
                    run.update(jobs=summary_rows(outcomes))
    click.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    echo_jobs(outcomes)
    if run:
        run.write_table(SWEEP, frame)
        run.finish()
