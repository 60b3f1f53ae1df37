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
    "--table",
    "table",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A subject table (asegstats2table/aparcstats2table output, CSV/TSV); repeat to join "
    "tables on subject.",
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
    help="participants.tsv (participant_id, age, ...); optional with --table if it has ages.",
)
@click.option(
    "--features",
    default=None,
    help="Feature columns: COLS (comma-separated names or globs) or FILE (one per line) "
    "[default: columns named like FreeSurfer regions].",
)
@click.option(
    "--include-columns", default=None, help="Further columns to use as features (COLS or FILE)."
)
@click.option("--subject-column", default=None, help="Subject id column [default: detected].")
@click.option("--age-column", default="age", show_default=True, help="Age column.")
@click.option("--site-column", default=None, help="Site column [default: 'site' if present].")
@click.option("--sex-column", default=None, help="Sex column [default: 'sex' if present].")
@click.option(
    "--icv-column", default=None, help="ICV column [default: EstimatedTotalIntraCranialVol, eTIV]."
)
@click.option(
    "--test",
    "test",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Held-out test table(s), same feature columns; train on all of --table/--tables.",
)
@click.option(
    "--test-participants",
    type=click.Path(dir_okay=False),
    help="Ages of the --test subjects [default: --participants].",
)
@click.option(
    "--split",
    "split",
    type=float,
    default=None,
    help="Hold out this fraction of subjects as one stratified test set (instead of K-fold).",
)
@click.option(
    "--stratify-site", is_flag=True, help="Stratify splits by site as well as by age bin."
)
@click.option(
    "--param",
    "params",
    multiple=True,
    help="Model hyper-parameter KIND.NAME=VALUE, e.g. svr.C=10 (repeatable).",
)
@click.option(
    "--tune", is_flag=True, help="Choose hyper-parameters by nested CV over a small grid."
)
@click.option("--factor", default=None, help="With --ensemble: keep only members of this factor.")
@click.option(
    "--out", required=True, type=OutputDir(), help="Output run directory."
)
@click.option(
    "--regressors",
    default="rf,svr,gb,ridge",
    show_default=True,
    help="Comma-separated: rf,svr,gb,ridge,knn (mean and median baselines always run).",
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
    help="ICV for --normalize-icv (auto: eTIV from aseg.stats or an ICV column if present, else "
    "the sum of the features; the output says which).",
)
@click.option(
    "--n-estimators", type=int, default=None, help="Trees of rf and gb (scikit-learn default 100)."
)
@click.option(
    "--no-gaussian-control", is_flag=True, help="Skip the Gaussian-noise augmentation control."
)
@threads_option
def brainage(
    ensemble, table, tables, aseg_stats, participants, features, include_columns, subject_column,
    age_column, site_column, sex_column, icv_column, test, test_participants, split,
    stratify_site, params, tune, factor, out, regressors, max_members, max_combinations, splits,
    seed, normalize_icv, icv_source, n_estimators, no_gaussian_control,
) -> None:  # fmt: skip
    """Train brain-age regressors, with the mean/median baselines, optionally with ensemble
    members as augmentation.

    Exactly one of --table, --tables, --ensemble or --aseg-stats gives the volumes;
    --participants gives ages (optional with --ensemble, whose manifest names its cohort, and
    with --table when the table has an age column). Features are the columns named like
    FreeSurfer regions, or --features; every other numeric column is reported and not used.
    Evaluation: K-fold (--splits), one stratified split (--split) or a test table (--test).
    Writes results.tsv, summary.tsv, evaluation.tsv, comparison.tsv, robustness.tsv,
    predictions.tsv, figures/*.png and manifest.json under --out.
    """
    from harness.brainage import ProtocolConfig, parse_regressors, run_brainage
    from harness.brainage.io import read_aseg_dir, read_ensemble, read_member_tables, read_table
    from harness.brainage.protocol import Evaluation
    from harness.brainage.regressors import parse_params
    from harness.brainage.tables import FeatureSpec, TableColumns
    from harness.errors import InputError, check_positive

    sources = {"--table": table, "--tables": tables, "--ensemble": ensemble,
               "--aseg-stats": aseg_stats}  # fmt: skip
    given = [name for name, value in sources.items() if value]
    if len(given) != 1:
        raise InputError(f"exactly one of {list(sources)} is required, got {given or 'none'}")
    if given[0] in ("--tables", "--aseg-stats") and not participants:
        raise InputError(f"--participants is required with {given[0]}")
    if factor and not ensemble:
        raise InputError("--factor applies only to --ensemble")
    if test and not (table or tables):
        raise InputError("--test needs the training data as --table or --tables")
    if test_participants and not test:
        raise InputError("--test-participants applies only to --test")
    if test and split is not None:
        raise InputError("give --test or --split, not both")
    explicit_icv = click.get_current_context().get_parameter_source("icv_source")
    if not normalize_icv and explicit_icv is click.core.ParameterSource.COMMANDLINE:
        raise InputError("--icv-source applies only with --normalize-icv")
    for name, value in (
        ("--max-combinations", max_combinations),
        ("--n-estimators", n_estimators),
        ("--max-members", max_members),
    ):
        if value is not None:
            check_positive(name, value)
    kinds = parse_regressors(regressors)
    regressor_params = parse_params(params, [k.value for k in kinds])
    if n_estimators is not None:
        for kind in ("rf", "gb"):
            if "n_estimators" in regressor_params.get(kind, {}):
                raise InputError(f"give --n-estimators or --param {kind}.n_estimators, not both")
            regressor_params.setdefault(kind, {})["n_estimators"] = n_estimators
    spec = FeatureSpec.parse(features, include_columns)
    columns = TableColumns(subject_column, age_column, site_column, sex_column, icv_column)

    test_data = None
    if table:
        data = read_table(table, participants, spec, columns)
    elif tables:
        data = read_member_tables(tables, participants, spec, columns)
    elif ensemble:
        data = read_ensemble(ensemble, participants, factor)
    else:
        data = read_aseg_dir(aseg_stats, participants)
    if test:
        test_spec = FeatureSpec(features=data.regions)
        test_data = read_table(test, test_participants or participants, test_spec, columns)
    evaluation = Evaluation.TEST if test else Evaluation.SPLIT if split is not None else Evaluation.KFOLD
    config = ProtocolConfig(
        regressors=kinds,
        n_splits=splits,
        max_combinations=max_combinations,
        seed=seed,
        gaussian_control=not no_gaussian_control,
        regressor_params=regressor_params,
        evaluation=evaluation,
        test_fraction=0.2 if split is None else split,
        tune=tune,
    )
    if data.excluded or table or tables:
        click.echo(f"features: {_feature_message(data)}")
    done = run_brainage(
        data,
        out,
        config,
        normalization=icv_source if normalize_icv else IcvNormalization.NONE,
        max_members=max_members,
        inputs={
            "source": given[0].lstrip("-"),
            "path": list(table) if table else sources[given[0]],
            "participants": participants,
            "factor": factor,
            "test": list(test) or None,
            "test_participants": test_participants,
        },
        test=test_data,
        stratify_site=stratify_site,
    )
    _echo_outcome(done, data, test_data, config)
    best = done.summary.sort_values("mae_mean").iloc[0]
    click.echo(
        f"wrote {out}: {len(done.results)} result rows; lowest MAE {best['mae_mean']:.3f} "
        f"({best['regressor']}, {best['augmentation']}, k={best['k']})"
    )


def _feature_message(data) -> str:
    from harness.brainage.tables import FeatureSelection

    return FeatureSelection(data.regions, data.excluded).message()


def _echo_outcome(done, data, test_data, config) -> None:
    """How the data were used (ICV, evaluation, metadata) and the pooled evaluation table."""
    click.echo(f"ICV normalisation: {done.icv}")
    mode = done.info["evaluation"]
    if test_data is not None:
        how = f"held-out test table: {len(data.subjects)} training, {len(test_data.subjects)} test subjects"
    elif mode == "split":
        how = f"one stratified split, {config.test_fraction:g} of {len(data.subjects)} subjects held out"
    else:
        how = f"{config.n_splits}-fold cross-validation over {len(data.subjects)} subjects"
    click.echo(f"evaluation: {how}")
    for column, counts in done.info["metadata"].items():
        click.echo(f"{column}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    table = done.evaluation.copy()
    table["mae [95% CI]"] = [
        f"{m:.2f} [{lo:.2f}, {hi:.2f}]"
        for m, lo, hi in zip(table["mae"], table["mae_ci_low"], table["mae_ci_high"], strict=True)
    ]
    shown = table[["regressor", "augmentation", "k", "n_subjects", "mae [95% CI]", "r2", "bias_slope"]]
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if not done.by_group.empty:
        groups = done.by_group.assign(group=done.by_group["group_by"] + "=" + done.by_group["group"])
        mae = groups.pivot_table(index="regressor", columns="group", values="mae", sort=False)
        click.echo("test MAE by group (evaluation_by_group.tsv):")
        click.echo(mae.to_string(float_format=lambda v: f"{v:.2f}"))
