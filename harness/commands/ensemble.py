"""``harness ensemble run|analyze``: train ensemble members, then measure their agreement."""

from __future__ import annotations

import click

from harness.commands.options import OutputDir, executor_options, threads_option
from harness.commands.train import training_options


@click.group()
def ensemble() -> None:
    """Ensembles of models that differ by one named factor (seed, mca-*, kernel-*)."""


@ensemble.command()
@click.option("--cohort", required=True, type=click.Path(file_okay=False), help="Cohort directory.")
@click.option(
    "--out", required=True, type=OutputDir(), help="Ensemble directory ENS."
)
@click.option(
    "--factor",
    "factors",
    multiple=True,
    required=True,
    help="NAME=SIZE, repeatable: seed=5, seed:init=3, mca-sr=5, mca-rr=5, kernel-sr=3 ...",
)
@click.option("--precision", type=int, default=None, help="Virtual precision t of mca-*/kernel-*.")
@click.option(
    "--member",
    "only",
    multiple=True,
    help="Train only this member of the plan (repeatable), leaving ENS/manifest.json alone: "
    "run disjoint members in parallel processes, then once more without --member.",
)
@training_options
@executor_options
def run(
    cohort, out, factors, precision, only, views, preset, epochs, batch_size, lr, schedule, step_size,
    gamma, milestones, cycles, min_lr_ratio, seed, train_subjects, predict, save_prob, device,
    quiet, executor_spec,
) -> None:  # fmt: skip
    """Train the baseline and every member of each factor into ENS/members/<member>/.

    Each member is one job: one after another here, or on a Dask cluster (--executor dask,
    --scheduler, --scheduler-file). Finished members are kept; run the same command again after
    an interruption to resume the rest.
    """
    from harness.commands.options import echo_jobs, opened_executor
    from harness.commands.train import parse_views, schedule_settings
    from harness.ensemble.plan import plan_ensemble
    from harness.ensemble.run import parse_factor_sizes, run_ensemble
    from harness.executors import JobsFailedError
    from harness.runs import RunDir

    sizes = parse_factor_sizes(factors)
    plan_ensemble(sizes, precision)  # a bad plan fails before any worker starts
    settings = schedule_settings(schedule, step_size, gamma, milestones, cycles, min_lr_ratio)
    with opened_executor(executor_spec) as executor:
        try:
            path = run_ensemble(
                cohort, out, sizes, precision=precision, views=parse_views(views), preset=preset,
                epochs=epochs, batch_size=batch_size, lr=lr, schedule=settings, seed=seed,
                train_subjects=train_subjects, predict=predict, save_probabilities=save_prob,
                device=device, progress=not quiet, only=list(only) or None, executor=executor,
            )  # fmt: skip
        except JobsFailedError as exc:
            echo_jobs(exc.outcomes, echo=lambda text: click.echo(text, err=True))
            raise
    if only:
        click.echo(f"trained {', '.join(only)} in {path}/members; run again without --member "
                   "to record the ensemble")  # fmt: skip
        return
    manifest = RunDir(path).manifest()
    config = manifest["config"]
    if manifest.get("jobs"):
        echo_jobs(manifest["jobs"])
    click.echo(
        f"ensemble of {len(config['members'])} members ({', '.join(config['members'])}) in {path}; "
        f"{len(config['predict_subjects'])} subjects predicted; next: harness ensemble analyze {path}"
    )


@ensemble.command()
@click.argument("ensemble_dir", type=click.Path(file_okay=False))
@click.option(
    "--cohort",
    type=click.Path(file_okay=False),
    default=None,
    help="Cohort with the ground truth (default: the one recorded in ENSEMBLE_DIR).",
)
@click.option("--no-entropy-maps", is_flag=True, help="Skip the voxel-wise entropy NIfTI maps.")
@threads_option
def analyze(ensemble_dir: str, cohort: str | None, no_entropy_maps: bool) -> None:
    """Per-region Dice to truth, minimum pairwise Dice, majority vote, entropy maps, significant
    bits of volumes and probabilities, and factor correlation, into ENSEMBLE_DIR/analysis/."""
    from pathlib import Path

    from harness.ensemble.analyze import analyze_ensemble
    from harness.errors import InputError
    from harness.runs import RunDir
    from harness.runs.catalogue import FACTOR_CORRELATION, REGION_SUMMARY

    if cohort is None:
        run = RunDir(ensemble_dir)
        if not run.exists():
            raise InputError(f"{ensemble_dir} has no {run.manifest_path.name}; pass --cohort")
        cohort = run.manifest().get("config", {}).get("cohort")
        if not cohort:
            raise InputError(f"{run.manifest_path} records no cohort; pass --cohort")
    out = analyze_ensemble(Path(ensemble_dir), Path(cohort), entropy_maps=not no_entropy_maps)
    click.echo(f"analysis written to {out}")
    summary = REGION_SUMMARY.path(out).read_text().splitlines()
    click.echo(
        f"{len(summary) - 1} region rows; see {REGION_SUMMARY.name} and {FACTOR_CORRELATION.name}"
    )
