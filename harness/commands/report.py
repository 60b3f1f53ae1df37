"""``harness report``: a self-contained HTML report and a Markdown summary."""

from __future__ import annotations

import click

from harness.commands.options import OutputFile


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o", "--output", default="report.html", show_default=True,
    type=OutputFile(), help="HTML file; report.md is written beside it.",
)  # fmt: skip
@click.option("--title", default="harness stability report", show_default=True)
@click.option(
    "--skip-bad", is_flag=True,
    help="Leave out unreadable run manifests (named on stderr) instead of failing.",
)  # fmt: skip
def report(runs: tuple[str, ...], output: str, title: str, skip_bad: bool) -> None:
    """Report on RUNS (run directories, result roots or benchmark JSON files).

    Sections appear when their data is present: significant bits, throughput, ensemble Dice and
    entropy maps, brain-age MAE curves, gradient spectra, sweep/granularity tables, environment.
    """
    from harness.report import build_report

    warnings: list[str] = []
    html_path, md_path = build_report(
        list(runs), output, title=title, skip_bad=skip_bad, warnings=warnings
    )
    for line in warnings:
        click.echo(line, err=True)
    click.echo(f"wrote {html_path} and {md_path}")
