"""``harness demo``: the main job on the embedded default."""

from __future__ import annotations

from pathlib import Path

import click

from harness.commands.options import OutputDir, executor_options, threads_option


@click.command()
@click.option(
    "--out",
    "-o",
    type=OutputDir(),
    default="harness-runs/demo",
    show_default=True,
    help="Output folder (resumes if it exists).",
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option(
    "--size",
    type=click.Choice(["small", "tiny", "full"]),
    default="small",
    show_default=True,
    help="small: laptop CPU, minutes; tiny: smoke test; full: FastSurfer size, for a GPU.",
)
@click.option("--full", is_flag=True, help="Same as --size full.")
@click.option("--seed", default=0, show_default=True, type=int)
@threads_option
@executor_options
def demo(out: str, device: str, size: str, full: bool, seed: int, executor_spec) -> None:
    """Run every part of harness end to end on the embedded default (CPU, minutes)."""
    import torch

    from harness.errors import InputError
    from harness.experiments.demo import DemoContext, run_demo
    from harness.runs.catalogue import REPORT_HTML

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device is {device!r} but CUDA is not available on this machine")
    if device not in ("cpu", "cuda"):
        raise InputError(f"--device must be 'cpu' or 'cuda', got {device!r}")
    from harness.commands.options import opened_executor

    size = "full" if full else size
    with opened_executor(executor_spec) as executor:
        ctx = DemoContext(out=Path(out), device=device, full=size == "full", seed=seed,
                          size_name=size, executor=executor)  # fmt: skip
        run_demo(ctx)
    click.echo(f"done: results in {ctx.out}")
    click.echo(f"report: {ctx.stage_dir('report').file(REPORT_HTML)}")
