"""``harness brainage``: brain-age regression with ensemble members as augmentation."""

from __future__ import annotations

import click

from harness.brainage.features import IcvNormalization
from harness.commands.options import OutputDir, enum_choice, threads_option


@click.command()
@click.option(
    "--ensemble",
    type=click.Path(file_okay=False),
    help="Ensemble directory (ENS/analysis/volumes.tsv).",
)
@click.option(
    "--tables", type=click.Path(file_okay=False), help="Directory of <member>.tsv|.csv tables."
)
@click.option(
    "--aseg-stats",
    type=click.Path(file_okay=False),
    help="Directory DIR/<member>/<subject>[.stats|/aseg.stats].",
)
@click.option(
    "--participants",
    type=click.Path(dir_okay=False),
    help="participants.tsv (participant_id, age, ...).",
)
@click.option("--factor", default=None, help="With --ensemble: keep only members of this factor.")
@click.option(
    "--out", required=True, type=OutputDir(), help="Output run directory."
)
@click.option(
    "--regressors",
    default="rf,svr,gb,ridge",
    show_default=True,
    help="Comma-separated: rf,svr,gb,ridge,knn.",
)
@click.option(
    "--max-members", type=int, default=None, help="Use only the first N perturbed members."
)
@click.option(
    "--max-combinations",
    type=int,
    default=10,
    show_default=True,
    help="Member combinations per ensemble size.",
)
@click.option(
    "--splits",
    type=int,
    default=5,
    show_default=True,
    help="Folds of the stratified subject-level K-fold.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of splits, combinations, noise and trees.",
)
@click.option(
    "--normalize-icv", is_flag=True, help="Divide volumes by an intracranial-volume proxy."
)
@click.option(
    "--icv-source",
    type=enum_choice(IcvNormalization, exclude=[IcvNormalization.NONE]),
    default="auto",
    show_default=True,
    help="ICV proxy for --normalize-icv (auto: eTIV if every aseg.stats has it, else sum of regions).",
)
@click.option(
    "--n-estimators", type=int, default=None, help="Trees of rf and gb (scikit-learn default 100)."
)
@click.option(
    "--no-gaussian-control", is_flag=True, help="Skip the Gaussian-noise augmentation control."
)
@threads_option
def brainage(
    ensemble, tables, aseg_stats, participants, factor, out, regressors, max_members,
    max_combinations, splits, seed, normalize_icv, icv_source, n_estimators, no_gaussian_control,
) -> None:  # fmt: skip
    """Train brain-age regressors with and without ensemble-member augmentation.

    Exactly one of --ensemble, --tables or --aseg-stats gives the volumes; --participants gives
    ages (optional with --ensemble, whose manifest names its cohort). Writes results.tsv,
    summary.tsv, robustness.tsv, predictions.tsv, figures/*.png and manifest.json under --out.
    """
    from harness.brainage import ProtocolConfig, parse_regressors, run_brainage
    from harness.brainage.io import read_aseg_dir, read_ensemble, read_member_tables
    from harness.errors import InputError, check_positive

    sources = {"--ensemble": ensemble, "--tables": tables, "--aseg-stats": aseg_stats}
    given = [name for name, value in sources.items() if value]
    if len(given) != 1:
        raise InputError(f"exactly one of {list(sources)} is required, got {given or 'none'}")
    if not ensemble and not participants:
        raise InputError(f"--participants is required with {given[0]}")
    if factor and not ensemble:
        raise InputError("--factor applies only to --ensemble")
    for name, value in (
        ("--max-combinations", max_combinations),
        ("--n-estimators", n_estimators),
        ("--max-members", max_members),
    ):
        if value is not None:
            check_positive(name, value)

    if ensemble:
        data = read_ensemble(ensemble, participants, factor)
    elif tables:
        data = read_member_tables(tables, participants)
    else:
        data = read_aseg_dir(aseg_stats, participants)
    trees = {} if n_estimators is None else {"n_estimators": n_estimators}
    config = ProtocolConfig(
        regressors=parse_regressors(regressors),
        n_splits=splits,
        max_combinations=max_combinations,
        seed=seed,
        gaussian_control=not no_gaussian_control,
        regressor_params={"rf": trees, "gb": trees},
    )
    result = run_brainage(
        data,
        out,
        config,
        normalization=icv_source if normalize_icv else "none",
        max_members=max_members,
        inputs={
            "source": given[0].lstrip("-"),
            "path": sources[given[0]],
            "participants": participants,
            "factor": factor,
        },
    )
    best = result.summary.sort_values("mae_mean").iloc[0]
    click.echo(
        f"wrote {out}: {len(result.results)} result rows; lowest MAE {best['mae_mean']:.3f} "
        f"({best['regressor']}, {best['augmentation']}, k={best['k']})"
    )
