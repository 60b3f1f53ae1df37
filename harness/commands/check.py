"""``harness check``: a CI gate on numerical stability and speed."""

from __future__ import annotations

import click

from harness.commands.options import enum_choice
from harness.store.tables import TableFormat


@click.command()
@click.option("--baseline", required=True, type=click.Path(), help="Baseline results (A).")
@click.option("--current", required=True, type=click.Path(), help="Current results (B).")
@click.option(
    "--max-digit-loss", type=float, default=1.0, show_default=True,
    help="Fail when any significant-bits statistic drops by more than this many bits.",
)  # fmt: skip
@click.option(
    "--max-slowdown", type=float, default=1.25, show_default=True,
    help="Fail when a mean time grows by more than this ratio (and Welch p < --alpha).",
)  # fmt: skip
@click.option(
    "--fail-if", "fail_if", multiple=True, metavar="EXPR",
    help="Extra gate FIELD OP NUMBER, e.g. 'sig_bits.min<20' (repeatable).",
)  # fmt: skip
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Welch test level.")
@click.option("--format", "fmt", type=enum_choice(TableFormat), default="table")
@click.option(
    "--skip-bad", is_flag=True,
    help="Leave out unreadable run manifests (named on stderr) instead of failing.",
)  # fmt: skip
def check(
    baseline: str, current: str, max_digit_loss: float, max_slowdown: float,
    fail_if: tuple[str, ...], alpha: float, fmt: str, skip_bad: bool,
) -> None:  # fmt: skip
    """Exit 0 when CURRENT is within bounds of BASELINE, 1 (with a table) when something
    regressed, 2 on bad input.

    Fields of --fail-if: sig_bits.{mean,median,min}, time.{mean,median,min}, gflops, ops,
    ratio_vs_ieee (values in CURRENT); delta.sig_bits.{mean,median,min}, slowdown (CURRENT vs
    BASELINE); run.<metric> (a run metric in CURRENT, e.g. run.weights_sig_bits_min).
    """
    from harness.compare import (
        DigitLossCheck,
        SlowdownCheck,
        compare_results,
        parse_fail_if,
        run_checks,
    )
    from harness.errors import check_positive
    from harness.store.tables import render

    check_positive("--max-digit-loss", max_digit_loss, allow_zero=True)
    check_positive("--max-slowdown", max_slowdown)
    checks = [parse_fail_if(expr) for expr in fail_if]  # parse first: bad input fails fast
    checks = [DigitLossCheck(max_digit_loss), SlowdownCheck(max_slowdown, alpha), *checks]
    comparison = compare_results(baseline, current, alpha=alpha, skip_bad=skip_bad)
    for line in comparison.warnings:
        click.echo(line, err=True)
    report = run_checks(comparison, checks)
    examined = ", ".join(f"{name}: {n} values" for name, n in report.examined.items())
    if report.passed:
        click.echo(f"check passed ({examined})")
        return
    click.echo(render(report.violations, fmt))
    click.echo(f"\ncheck FAILED: {len(report.violations)} regression(s) ({examined})")
    raise click.exceptions.Exit(1)
