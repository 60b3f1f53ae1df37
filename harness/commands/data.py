"""``harness data``: synthetic cohorts, import of FreeSurfer/BIDS data, cohort validation."""

from __future__ import annotations

import click

from harness.commands.options import OutputDir, threads_option
from harness.data.importers import SourceLayout
from harness.enums import choices


@click.group()
def data() -> None:
    """Synthetic labelled cohorts and cohort checks."""


@data.command()
@click.option("--subjects", "-n", type=int, required=True, help="Number of subjects.")
@click.option(
    "--out", "-o", "out", type=OutputDir(), required=True, help="Cohort directory."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Base seed (same seed => same files)."
)
@click.option(
    "--grid",
    type=int,
    default=96,
    show_default=True,
    help="Output grid edge in voxels (256 = 1 mm FastSurfer space).",
)
@click.option(
    "--voxel-size", type=float, default=None, help="Voxel edge in mm [default: max(1, 192/grid)]."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Atlas cache [default: $HARNESS_CACHE or ~/.cache/harness].",
)
@threads_option
def synth(
    subjects: int, out: str, seed: int, grid: int, voxel_size: float | None, cache_dir: str | None
) -> None:
    """Generate a synthetic labelled cohort with known ages and groups."""
    from harness.data.synth import generate_cohort

    cohort = generate_cohort(
        subjects, out, seed, grid=grid, voxel_size=voxel_size, cache_dir=cache_dir
    )
    click.echo(f"wrote {len(cohort)} subjects to {cohort.root} (grid {grid}, seed {seed})")


@data.command()
@click.argument("directory", type=click.Path())
@click.option("--no-labels", is_flag=True, help="Accept subjects without a _dseg label map.")
@click.option(
    "--no-age", is_flag=True, help="Accept participants whose age is n/a (imported data)."
)
def check(directory: str, no_labels: bool, no_age: bool) -> None:
    """Validate a cohort directory and print a summary table."""
    import numpy as np
    import pandas as pd

    from harness.data.cohort import load_cohort

    cohort = load_cohort(
        directory, require_labels=not no_labels, check_volumes=True, require_age=not no_age
    )
    table = cohort.table()[["participant_id", "age", "sex", "group"]]
    table = table.merge(pd.DataFrame(cohort.extra["volumes"]), on="participant_id")
    click.echo(table.to_string(index=False))
    groups = ", ".join(f"{g}: {n}" for g, n in table["group"].value_counts().sort_index().items())
    ages = cohort.ages[~np.isnan(cohort.ages)]
    age = (
        f"age {ages.min():.1f}-{ages.max():.1f} (mean {ages.mean():.1f})"
        if ages.size
        else "no ages"
    )
    click.echo(f"\n{len(cohort)} subjects, {age}; groups {groups}; cohort OK")


@data.command(name="import")
@click.argument("source", type=click.Path())
@click.option("--out", "-o", "out", type=OutputDir(), required=True, help="Cohort directory.")
@click.option(
    "--layout", type=click.Choice(["auto", *choices(SourceLayout)]), default="auto",
    show_default=True, help="Source layout: a FreeSurfer SUBJECTS_DIR or a BIDS dataset.",
)  # fmt: skip
@click.option(
    "--participants", type=click.Path(dir_okay=False), default=None,
    help="participants.tsv with age, sex, group [default: SOURCE/participants.tsv if present].",
)  # fmt: skip
@click.option(
    "--size", type=int, default=256, show_default=True,
    help="Conformed grid edge in voxels (FastSurfer: 256; smaller grids for quick tests).",
)  # fmt: skip
@click.option(
    "--voxel-size", type=float, default=1.0, show_default=True,
    help="Conformed voxel edge in mm (FastSurfer: 1).",
)  # fmt: skip
@click.option("--no-labels", is_flag=True, help="Import T1 images only (no label maps).")
@click.option("--skip-bad", is_flag=True, help="Skip subjects that fail a check (see the report).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@threads_option
def import_(
    source: str, out: str, layout: str, participants: str | None, size: int, voxel_size: float,
    no_labels: bool, skip_bad: bool, quiet: bool,
) -> None:  # fmt: skip
    """Import a FreeSurfer SUBJECTS_DIR or a BIDS dataset as a conformed cohort."""
    from pathlib import Path

    from harness.data.importers import ImportOptions, import_dataset
    from harness.enums import parse_enum
    from harness.runs.catalogue import IMPORT_REPORT

    options = ImportOptions(size=size, voxel_size=voxel_size, labels=not no_labels,
                            skip_bad=skip_bad)  # fmt: skip
    kind = None if layout == "auto" else parse_enum(SourceLayout, layout, "--layout")
    report = import_dataset(source, out, layout=kind, options=options, participants=participants,
                            progress=not quiet)  # fmt: skip
    skipped = report[report["status"] == "skipped"]
    for _, row in skipped.iterrows():
        click.echo(f"skipped {row['source_id']}: {row['reason']}")
    click.echo(
        f"imported {len(report) - len(skipped)} of {len(report)} subjects into {out} "
        f"(grid {size}, {voxel_size:g} mm, LIA); {len(skipped)} skipped; report "
        f"{Path(out) / IMPORT_REPORT.name}"
    )
