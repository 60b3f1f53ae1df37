"""``harness introspect``: offline demos of per-group spectral introspection."""

from __future__ import annotations

import click

from harness.commands.options import OutputDir, enum_choice, threads_option
from harness.experiments.introspect_demo import Demo


@click.command()
@click.option(
    "--demo",
    required=True,
    type=enum_choice(Demo),
    help="digits: sklearn digits MLP (even/odd); volumes: regional-volume MLP; images: 3D CNN.",
)
@click.option(
    "--out", required=True, type=OutputDir(), help="Output run directory."
)
@click.option(
    "--cohort",
    type=click.Path(file_okay=False),
    default=None,
    help="Cohort directory for volumes/images [default: synthesize one into OUT/cohort].",
)
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--top-k", type=int, default=10, show_default=True, help="Singular values kept.")
@click.option("--every", type=int, default=1, show_default=True, help="Probe every k-th step.")
@click.option(
    "--shuffle-groups", is_flag=True, help="Control: permute group labels within every batch."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--batch-size", type=int, default=None, help="[default: digits 64, volumes/images 16]"
)
@click.option(
    "--steps-per-epoch",
    type=int,
    default=None,
    help="Random batches per epoch [default: digits one pass, volumes/images 20].",
)
@click.option(
    "--subjects", type=int, default=60, show_default=True, help="Size of a synthesized cohort."
)
@click.option(
    "--grid", type=int, default=24, show_default=True, help="Grid of a synthesized cohort."
)
@click.option("--alpha", type=float, default=0.05, show_default=True, help="FDR level.")
@threads_option
def introspect(
    demo, out, cohort, epochs, top_k, every, shuffle_groups, seed, device, batch_size,
    steps_per_epoch, subjects, grid, alpha,
) -> None:  # fmt: skip
    """Train a small model with a SpectralProbe and compare its groups' spectra.

    Writes spectra.parquet, stats.tsv, figures/<layer>.png and manifest.json under --out; an
    interrupted run resumes from its last finished epoch when started again with the same options.
    """
    from harness.errors import InputError
    from harness.experiments.introspect_demo import IntrospectConfig, run_demo

    if cohort and Demo(demo) is Demo.DIGITS:
        raise InputError("--cohort applies only to --demo volumes or images")
    config = IntrospectConfig(
        demo=Demo(demo), epochs=epochs, top_k=top_k, every=every, shuffle_groups=shuffle_groups,
        seed=seed, device=device, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
        subjects=subjects, grid=grid, alpha=alpha, cohort=cohort,
    )  # fmt: skip
    summary = run_demo(config, out)
    click.echo(
        f"wrote {out}: {summary['rows']} spectra rows, {summary['tests']} group tests; "
        f"FDR<{alpha} discoveries: Welch {summary.get('t_discoveries', 0)}, "
        f"Mann-Whitney {summary.get('u_discoveries', 0)}; "
        f"{summary.get('excluded_below_rank_tolerance', 0)} singular values below the rank "
        "tolerance not tested"
    )
    for caveat in summary.get("caveats", []):
        click.echo(f"caveat: {caveat}")
