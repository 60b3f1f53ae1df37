"""The classical pipeline's stability beside the CNN ensembles' (``harness classical compare``).

Inputs are analysis directories written by :func:`harness.ensemble.analyze.analyze_ensemble`
(one of the classical run, one of a CNN ensemble) and optionally a SimpleITK reference run
(:mod:`harness.classical.reference`). Outputs, declared in :mod:`harness.runs.catalogue`: per
pipeline, factor and tissue kind, the median over regions of the minimum pairwise Dice and of
the Dice to truth with their 95% bootstrap intervals over subjects (copied from each run's
``stability_summary.tsv``; for the reference, Dice to truth only, bootstrapped the same way), a
per-region table, and a figure. The manifest records the anchor paper's numbers and whether
their ordering (the traditional pipeline more stable than the CNN on cortical regions)
holds here, decided from the intervals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import InputError
from harness.runs import RunDir, RunKind, catalogue
from harness.runs.layout import analysis_dir

#: the anchor paper: FreeSurfer's cortical minimum pairwise Dice, and the CNN ensembles' range
ANCHOR = {"freesurfer_cortical_min_dice": 0.919, "fastsurfer_cortical_min_dice": [0.63, 0.80]}
CLASSICAL, CNN, REFERENCE = "classical", "cnn", "simpleitk"
#: the CNN on the classical run's subjects only (minimum pairwise Dice recomputed from its
#: per-subject table), so the two pipelines are also compared on the same subjects
CNN_SAME = "cnn-same-subjects"
#: CNN factors compared by default: random seeds and stochastic-rounding training
CNN_FACTORS = ("seed", "mca-sr")
KINDS = ("all", "cortical", "subcortical", "wm", "csf")


def resolve_analysis(path: str | Path) -> Path:
    """An analysis directory, given it or the run directory that holds it."""
    path = Path(path)
    for candidate in (path, analysis_dir(path)):
        if catalogue.STABILITY_SUMMARY.path(candidate).is_file():
            return candidate
    raise InputError(
        f"{path} must be an ensemble or classical run with an analysis "
        f"({catalogue.STABILITY_SUMMARY.name} not found); run the analysis first"
    )


def _read(artifact, folder: Path) -> pd.DataFrame:
    return pd.read_csv(artifact.path(folder), sep="\t")


def _stability_rows(folder: Path, pipeline: str) -> pd.DataFrame:
    table = _read(catalogue.STABILITY_SUMMARY, folder)
    table.insert(0, "pipeline", pipeline)
    return table


def _reference_rows(run: Path, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    from harness.ensemble.analyze import N_BOOT
    from harness.ensemble.stability import bootstrap_indices, bootstrap_region_median

    dice = _read(catalogue.REFERENCE_DICE, run)
    if dice.empty:
        raise InputError(f"reference run {run} has no Dice to truth (cohort without label maps?)")
    subjects = sorted(dice["subject"].unique())
    indices = bootstrap_indices(len(subjects), N_BOOT, np.random.default_rng(seed))
    rows = []
    for kind in KINDS:
        sub = dice if kind == "all" else dice[dice["kind"] == kind]
        if sub.empty:
            continue
        matrix = sub.pivot_table(index="subject", columns="label", values="dice", dropna=False)
        value, low, high = bootstrap_region_median(
            matrix.reindex(subjects).to_numpy(float), indices
        )
        rows.append({"pipeline": REFERENCE, "factor": "reference", "kind": kind, "n_members": 1,
                     "n_subjects": len(subjects), "n_regions": int(sub["label"].nunique()),
                     "dice_to_truth": value, "dice_to_truth_low": low,
                     "dice_to_truth_high": high})  # fmt: skip
    regions = (
        dice.groupby(["label", "region", "kind"], as_index=False)["dice"].mean()
        .rename(columns={"dice": "mean_dice_to_truth"})
        .assign(pipeline=REFERENCE, factor="reference", n_members=1)
    )  # fmt: skip
    return pd.DataFrame(rows), regions


def _same_subject_rows(cnn_dir: Path, classical_dir: Path, factors, seed: int = 0) -> pd.DataFrame:
    """CNN minimum pairwise Dice over the classical run's subjects, bootstrapped over them."""
    from harness.ensemble.analyze import N_BOOT
    from harness.ensemble.stability import bootstrap_indices, bootstrap_region_median

    cnn = _read(catalogue.MIN_PAIRWISE_DICE, cnn_dir)
    subjects = sorted(set(_read(catalogue.MIN_PAIRWISE_DICE, classical_dir)["subject"]))
    cnn = cnn[cnn["subject"].isin(subjects) & cnn["factor"].isin(factors)]
    subjects = sorted(set(cnn["subject"]))
    if not subjects:
        return pd.DataFrame()
    indices = bootstrap_indices(len(subjects), N_BOOT, np.random.default_rng(seed))
    rows = []
    for (factor, kind), sub in _by_kind(cnn):
        matrix = sub.pivot_table(index="subject", columns="label", values="min_dice", dropna=False)
        value, low, high = bootstrap_region_median(
            matrix.reindex(subjects).to_numpy(float), indices
        )
        rows.append({"pipeline": CNN_SAME, "factor": factor, "kind": kind,
                     "n_members": int(sub["n_members"].iloc[0]), "n_subjects": len(subjects),
                     "n_regions": int(sub["label"].nunique()), "min_dice": value,
                     "min_dice_low": low, "min_dice_high": high})  # fmt: skip
    return pd.DataFrame(rows)


def _by_kind(table: pd.DataFrame):
    for factor, sub in table.groupby("factor", sort=True):
        for kind in KINDS:
            part = sub if kind == "all" else sub[sub["kind"] == kind]
            if not part.empty:
                yield (factor, kind), part


def _region_rows(folder: Path, pipeline: str) -> pd.DataFrame:
    table = _read(catalogue.REGION_SUMMARY, folder)
    return table.assign(pipeline=pipeline)


def ordering(summary: pd.DataFrame, kind: str = "cortical") -> dict:
    """Whether every classical factor's minimum pairwise Dice on ``kind`` regions lies above
    every CNN factor's, with disjoint 95% intervals (``reproduces``), and the values."""
    rows = summary[(summary["kind"] == kind) & summary["min_dice"].notna()]
    classical = rows[rows["pipeline"] == CLASSICAL]
    cnn = rows[rows["pipeline"] == CNN]
    if classical.empty or cnn.empty:
        return {"kind": kind, "reproduces": None}
    above = bool(classical["min_dice"].min() > cnn["min_dice"].max())
    disjoint = bool(classical["min_dice_low"].min() > cnn["min_dice_high"].max())
    return {
        "kind": kind, "reproduces": above and disjoint, "above": above, "intervals_disjoint": disjoint,
        "classical": dict(zip(classical["factor"], classical["min_dice"].round(4), strict=True)),
        "cnn": dict(zip(cnn["factor"], cnn["min_dice"].round(4), strict=True)),
    }  # fmt: skip


def compare_runs(
    classical: str | Path, cnn: str | Path, out: str | Path, *, reference=None,
    cnn_factors=CNN_FACTORS,
) -> Path:  # fmt: skip
    """Write the comparison tables and figure into ``out``; returns ``out``.

    ``cnn_factors`` are the CNN ensemble's factors shown (all of the classical run's are).
    """
    cnn_factors = tuple(cnn_factors)
    classical_dir, cnn_dir = resolve_analysis(classical), resolve_analysis(cnn)
    reference = Path(reference) if reference else None
    if reference is not None and not catalogue.REFERENCE_DICE.path(reference).is_file():
        raise InputError(f"--reference {reference} must be a classical reference run "
                         f"({catalogue.REFERENCE_DICE.name} not found)")  # fmt: skip
    run = RunDir(out, kind=RunKind.CLASSICAL_COMPARISON)
    config = {"classical": str(classical_dir), "cnn": str(cnn_dir), "cnn_factors": list(cnn_factors),
              "reference": str(reference) if reference else None}  # fmt: skip
    run.start("harness classical compare", config)
    with run.failure_recorded():
        parts = [_stability_rows(classical_dir, CLASSICAL),
                 _only(_stability_rows(cnn_dir, CNN), cnn_factors),
                 _same_subject_rows(cnn_dir, classical_dir, cnn_factors)]  # fmt: skip
        regions = [_region_rows(classical_dir, CLASSICAL),
                   _only(_region_rows(cnn_dir, CNN), cnn_factors)]  # fmt: skip
        if reference is not None:
            ref_summary, ref_regions = _reference_rows(reference)
            parts.append(ref_summary)
            regions.append(ref_regions)
        summary = pd.concat(parts, ignore_index=True)
        summary = summary.reindex(columns=list(catalogue.CLASSICAL_COMPARISON.columns))
        region_table = pd.concat(regions, ignore_index=True).reindex(
            columns=list(catalogue.CLASSICAL_REGION_COMPARISON.columns))  # fmt: skip
        run.write_table(catalogue.CLASSICAL_COMPARISON, summary)
        run.write_table(catalogue.CLASSICAL_REGION_COMPARISON, region_table)
        _figure(run.file(catalogue.CLASSICAL_COMPARISON_FIGURE), summary)
        run.finish(anchor=ANCHOR, ordering=ordering(summary))
    return run.path


def _only(table: pd.DataFrame, factors) -> pd.DataFrame:
    found = table[table["factor"].isin(factors)]
    if found.empty:
        raise InputError(
            f"cnn factors must be among the CNN ensemble's {sorted(set(table['factor']))}, "
            f"got {list(factors)}"
        )
    return found


def _figure(path: Path, summary: pd.DataFrame) -> None:
    from harness.plotting import new_figure, png_bytes
    from harness.runs import atomic_write_bytes

    rows = summary[summary["min_dice"].notna()]
    series = list(dict.fromkeys(zip(rows["pipeline"], rows["factor"], strict=True)))
    kinds = [k for k in KINDS if k in set(rows["kind"])]
    fig, ax = new_figure(figsize=(10, 4))
    width = 0.8 / max(1, len(series))
    for i, (pipeline, factor) in enumerate(series):
        sub = rows[(rows["pipeline"] == pipeline) & (rows["factor"] == factor)].set_index("kind")
        sub = sub.reindex(kinds)
        x = np.arange(len(kinds)) + (i - (len(series) - 1) / 2) * width
        err = np.vstack(
            [sub["min_dice"] - sub["min_dice_low"], sub["min_dice_high"] - sub["min_dice"]]
        )
        ax.bar(x, sub["min_dice"], width, yerr=err, capsize=2, label=f"{pipeline} {factor}")
    ax.axhline(ANCHOR["freesurfer_cortical_min_dice"], color="k", ls="--", lw=1,
               label="anchor: FreeSurfer cortical 0.919")  # fmt: skip
    ax.axhspan(*ANCHOR["fastsurfer_cortical_min_dice"], color="grey", alpha=0.15,
               label="anchor: CNN ensembles cortical 0.63-0.80")  # fmt: skip
    ax.set_xticks(np.arange(len(kinds)), kinds)
    ax.set_ylabel("minimum pairwise Dice (median over regions)")
    ax.set_ylim(0.5, 1.0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    atomic_write_bytes(path, png_bytes(fig, dpi=110))
