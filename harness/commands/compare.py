"""``harness compare A B``: two result sets side by side."""

from __future__ import annotations

import click

from harness.commands.options import OutputFile, enum_choice
from harness.store.tables import TableFormat


@click.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option(
    "--format", "fmt", type=enum_choice(TableFormat), default="table",
    show_default=True, help="table/md: readable; tsv/json: every column.",
)  # fmt: skip
@click.option("-o", "--output", type=OutputFile(), help="Also write to this file.")
@click.option(
    "--alpha", type=float, default=0.05, show_default=True,
    help="Welch t-test level below which a timing difference is called real.",
)  # fmt: skip
@click.option(
    "--only-differences", is_flag=True,
    help="Show only rows whose verdict is not 'same' (and items found on one side only).",
)  # fmt: skip
@click.option(
    "--skip-bad", is_flag=True,
    help="Leave out unreadable run manifests (named on stderr) instead of failing.",
)  # fmt: skip
def compare(
    a: str, b: str, fmt: str, output: str | None, alpha: float, only_differences: bool,
    skip_bad: bool,
) -> None:  # fmt: skip
    """Compare result set A with B (each a run directory, a results root or a benchmark JSON).

    Benchmarks are matched by name with device words (cpu/cuda/gpu) ignored; for each, the mean
    time (throughput ratio B/A, Welch t-test p-value) and significant bits (difference in bits;
    real only beyond 1 bit). Run metrics are matched by run kind, table, metric and keys.
    """
    from harness.compare import compare_results, render_comparison
    from harness.runs import atomic_write_text

    comparison = compare_results(a, b, alpha=alpha, skip_bad=skip_bad)
    for line in comparison.warnings:
        click.echo(line, err=True)
    if only_differences:
        comparison = comparison.differences()
    text = render_comparison(comparison, fmt)
    click.echo(text)
    if output:
        atomic_write_text(output, text + "\n")
