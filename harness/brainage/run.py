"""One brain-age run: features, protocol, tables and figures in a run directory."""

from __future__ import annotations

from pathlib import Path

from harness.brainage.features import IcvNormalization, build_features
from harness.brainage.io import BrainAgeData
from harness.brainage.plots import plot_mae_vs_k, plot_predicted_vs_true
from harness.brainage.power import ANCHOR_EFFECT, compare_arms
from harness.brainage.protocol import ProtocolConfig, ProtocolResult, run_protocol
from harness.runs import RunDir, RunKind, catalogue


def run_brainage(
    data: BrainAgeData,
    out: str | Path,
    config: ProtocolConfig,
    normalization: IcvNormalization | str = IcvNormalization.NONE,
    max_members: int | None = None,
    inputs: dict | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """Run the protocol on ``data`` and write results.tsv, summary.tsv, robustness.tsv,
    predictions.tsv, comparison.tsv (paired per-subject comparison of the arms with the power
    to detect the anchor's effect, :mod:`harness.brainage.power`), figures/*.png and
    manifest.json under ``out``.

    Parameters
    ----------
    data : BrainAgeData
        Validated input (see :mod:`harness.brainage.io`).
    out : path-like
        Output run directory.
    config : ProtocolConfig
        Protocol settings.
    normalization : IcvNormalization or str
        ICV normalisation of the volumes.
    max_members : int, optional
        Use only the first N perturbed members (name order).
    inputs : dict, optional
        Description of the inputs, recorded in the manifest.
    progress : bool
        Show a progress bar.
    """
    data = data.select_members(max_members)
    features, applied = build_features(data.volumes, normalization, data.etiv)
    config.validate(len(data.subjects))
    run = RunDir(out, kind=RunKind.BRAINAGE)
    run.start(
        "brainage",
        config={
            "inputs": inputs or {},
            "regressors": [r.value for r in config.regressors],
            "n_splits": config.n_splits,
            "max_combinations": config.max_combinations,
            "seed": config.seed,
            "n_age_bins": config.n_age_bins,
            "gaussian_control": config.gaussian_control,
            "regressor_params": config.regressor_params,
            "icv_normalization": applied.value,
        },
        data={
            "members": list(data.members),
            "n_subjects": len(data.subjects),
            "regions": list(data.regions),
        },
    )
    with run.failure_recorded():  # failed, with the error, whatever goes wrong
        result = run_protocol(features, data.ages, data.subjects, config, progress=progress)
        run.write_table(catalogue.BRAINAGE_RESULTS, result.results)
        run.write_table(catalogue.BRAINAGE_SUMMARY, result.summary)
        run.write_table(catalogue.BRAINAGE_ROBUSTNESS, result.robustness)
        run.write_table(catalogue.BRAINAGE_PREDICTIONS, result.predictions)
        run.write_table(
            catalogue.BRAINAGE_COMPARISON, compare_arms(result.predictions, config.seed)
        )
        plot_mae_vs_k(result.summary, run.file(catalogue.MAE_FIGURE))
        plot_predicted_vs_true(result.predictions, run.file(catalogue.PREDICTED_FIGURE))
    run.finish(anchor_effect_years=ANCHOR_EFFECT)
    return result
