"""``harness demo``: the main job on the embedded default."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    default="harness-runs/demo",
    show_default=True,
    help="Output folder (resumes if it exists).",
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--full", is_flag=True, help="Full-size settings (for a GPU).")
@click.option("--seed", default=0, show_default=True, type=int)
def demo(out: str, device: str, full: bool, seed: int) -> None:
    """Run every part of harness end to end on the embedded default (CPU, minutes)."""
    import torch

    from harness.errors import InputError
    from harness.experiments.demo import DemoContext, run_demo

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device is {device!r} but CUDA is not available on this machine")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise InputError(f"--device must be 'cpu' or 'cuda[:N]', got {device!r}")
    ctx = DemoContext(out=Path(out), device=device, full=full, seed=seed)
    run_demo(ctx)
    click.echo(f"done: results in {ctx.out}")
