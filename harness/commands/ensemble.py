"""``harness ensemble run|analyze``: train ensemble members, then measure their agreement."""

from __future__ import annotations

import click


@click.group()
def ensemble() -> None:
    """Ensembles of models that differ by one named factor (seed, mca-*, kernel-*)."""


@ensemble.command()
@click.argument("ensemble_dir", type=click.Path(file_okay=False))
@click.option(
    "--cohort",
    type=click.Path(file_okay=False),
    default=None,
    help="Cohort with the ground truth (default: the one recorded in ENSEMBLE_DIR).",
)
@click.option("--no-entropy-maps", is_flag=True, help="Skip the voxel-wise entropy NIfTI maps.")
def analyze(ensemble_dir: str, cohort: str | None, no_entropy_maps: bool) -> None:
    """Per-region Dice to truth, minimum pairwise Dice, majority vote, entropy maps, significant
    bits of volumes and probabilities, and factor correlation, into ENSEMBLE_DIR/analysis/."""
    from pathlib import Path

    from harness.ensemble.analyze import analyze_ensemble
    from harness.errors import InputError
    from harness.store import RunDir

    if cohort is None:
        run = RunDir(ensemble_dir)
        if not run.exists():
            raise InputError(f"{ensemble_dir} has no manifest.json; pass --cohort")
        cohort = run.manifest().get("config", {}).get("cohort")
        if not cohort:
            raise InputError(f"{ensemble_dir}/manifest.json records no cohort; pass --cohort")
    out = analyze_ensemble(Path(ensemble_dir), Path(cohort), entropy_maps=not no_entropy_maps)
    click.echo(f"analysis written to {out}")
    summary = (out / "region_summary.tsv").read_text().splitlines()
    click.echo(f"{len(summary) - 1} region rows; see region_summary.tsv and factor_correlation.tsv")
