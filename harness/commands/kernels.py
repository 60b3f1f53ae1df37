"""``harness kernels``: the instrumented kernels; ``validate`` checks them against Verificarlo."""

from __future__ import annotations

import click

from harness.commands.options import OutputDir, enum_choice, executor_options, threads_option
from harness.kernels import KernelMode
from harness.kernels.cases import InputKind


@click.group()
def kernels():
    """Instrumented conv2d / batchnorm kernels."""


@kernels.command()
@click.option("--image", default="harness/verificarlo:torch2.13.0-cpu", show_default=True,
              help="Verificarlo image (harness containers build verificarlo).")  # fmt: skip
@click.option("--local", is_flag=True,
              help="Run the Verificarlo backends on this machine (inside the image) instead of "
                   "in containers of --image.")  # fmt: skip
@click.option("--out", required=True, type=OutputDir(),
              help="Run directory (manifest.json, validation.tsv, tests.tsv, samples/).")  # fmt: skip
@click.option("--backend", "backends", multiple=True,
              help="Verificarlo backend, repeatable [default: mca-rr@24,53 and mca_int-rr@24,53]; "
                   "e.g. ieee, mca-rr, mca-pb@24,53, mca_int-rr.")  # fmt: skip
@click.option("--mode", "modes", multiple=True, type=enum_choice(KernelMode, exclude=[KernelMode.IEEE]),
              help="harness kernel mode, repeatable [default: sr and rr].")  # fmt: skip
@click.option("--input", "kinds", multiple=True, type=enum_choice(InputKind),
              help="Input kind, repeatable [default: all].")  # fmt: skip
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(["float32", "float64"]),
              help="Precision, repeatable [default: both].")  # fmt: skip
@click.option("--samples", type=int, default=32, show_default=True, help="Samples per engine.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True,
              help="Level of the Holm-corrected two-sample tests.")  # fmt: skip
@click.option("--timeout", "timeout_s", type=float, default=600, show_default=True,
              help="Time limit of each backend's run, in seconds.")  # fmt: skip
@threads_option
@executor_options
def validate(image, local, out, backends, modes, kinds, dtypes, samples, seed, alpha,
             timeout_s, executor_spec) -> None:  # fmt: skip
    """harness's sr/rr kernels against Verificarlo's backends on the same inputs.

    Random and structured inputs (exact integers, powers of two and their neighbours, zeros), conv2d
    and batchnorm forward and backward, float32 and float64. Prints significant bits, exactness and
    the per-element two-sample tests; writes them under --out. With --executor dask each
    Verificarlo backend runs as one job on a Dask cluster.
    """
    import contextlib

    from harness.commands.options import opened_executor
    from harness.executors import ExecutorKind
    from harness.experiments.vfc_validate import run_validation

    with contextlib.ExitStack() as stack:
        jobs = None
        if executor_spec.kind is ExecutorKind.DASK:
            jobs = stack.enter_context(opened_executor(executor_spec))
        summary = run_validation(
            out, image=None if local else image, backends=backends or None,
            modes=modes or None, kinds=kinds or None, dtypes=dtypes or None, samples=samples,
            seed=seed, alpha=alpha, timeout_s=timeout_s, jobs=jobs,
        )  # fmt: skip
    click.echo(summary["report"])
    click.echo(f"wrote {out} ({summary['wall_s']:.1f} s)")
