"""The catalogue of run files: every file a run directory holds, declared once.

An :class:`Artifact` names a file (or a family of files, with ``{field}`` placeholders) relative
to its run directory, its format, the run kinds that write it, and for tables the key columns and
the columns. Producers write through ``artifact.path(run_dir, ...)``, readers find files with
``artifact.path`` / ``artifact.glob``, and the results database (:mod:`harness.store`) loads the
artifacts whose ``db`` is not :attr:`DbTable.NONE`, for the run kinds that own them. Adding an
output is one declaration here (:data:`ARTIFACTS` collects every declaration of the module).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from harness.errors import InputError
from harness.runs.kinds import RunKind


class FileFormat(Enum):
    """How an artifact is encoded."""

    TSV = "tsv"
    PARQUET = "parquet"
    JSON = "json"
    NIFTI = "nifti"
    MGZ = "mgz"  # FreeSurfer's compressed volume format
    PNG = "png"
    NPY = "npy"
    TORCH = "torch"  # torch.save checkpoint
    HTML = "html"
    MARKDOWN = "markdown"
    DUCKDB = "duckdb"  # a results database file (harness.store)
    LOCK = "lock"  # an exclusive-create lock file (harness.runs.lock)


class DbTable(Enum):
    """Where the results database puts an artifact's content."""

    NONE = "none"  # not loaded
    METRICS = "metrics"  # long form: one row per (table row, numeric non-key column)
    SPECTRA = "spectra"  # the spectra table, columns as declared


_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Artifact:
    """One declared run file.

    Parameters
    ----------
    name : str
        Path inside the run directory, ``/``-separated; ``{field}`` placeholders make a family
        (``predictions/{subject}_seg.nii.gz``).
    format : FileFormat
        Encoding.
    kinds : tuple of RunKind
        The run kinds that write it.
    keys : tuple of str
        Columns identifying a row (tables); the database also treats text columns as keys.
    columns : tuple of str or None
        Every column, in order, of a table whose columns are fixed; None where they depend on the
        run (then ``keys`` are the columns always present).
    db : DbTable
        Whether and where the results database loads it.
    description : str
        One line for the documentation.
    """

    name: str
    format: FileFormat
    kinds: tuple[RunKind, ...]
    keys: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = ()
    db: DbTable = DbTable.NONE
    description: str = ""

    @property
    def fields(self) -> tuple[str, ...]:
        """The placeholders of a family, in order (empty for a single file)."""
        return tuple(dict.fromkeys(_FIELD.findall(self.name)))

    @property
    def parent(self) -> str:
        """The folder part of the name (``predictions`` for ``predictions/{subject}_seg.nii.gz``)."""
        return self.name.rpartition("/")[0]

    @property
    def regex(self) -> re.Pattern:
        """Matches a ``/``-separated path relative to the run directory; groups are the fields."""
        pattern, seen = "", set()
        for i, part in enumerate(_FIELD.split(self.name)):
            if i % 2 == 0:
                pattern += re.escape(part)
            else:  # a field named twice must repeat its value
                pattern += f"(?P={part})" if part in seen else f"(?P<{part}>[^/]+?)"
                seen.add(part)
        return re.compile(pattern + r"\Z")

    def relpath(self, **fields: str) -> str:
        """The name with its placeholders filled in."""
        missing = set(self.fields) - set(fields)
        if missing:
            raise TypeError(f"{self.name} needs fields {sorted(missing)}")
        return self.name.format(**fields)

    def path(self, run_dir: str | os.PathLike, **fields: str) -> Path:
        """Where this artifact lives in ``run_dir``."""
        return Path(run_dir) / self.relpath(**fields)

    def glob(self, run_dir: str | os.PathLike) -> list[Path]:
        """Every file of this artifact present in ``run_dir``, sorted."""
        run_dir = Path(run_dir)
        pattern = _FIELD.sub("*", self.name)
        return sorted(p for p in run_dir.glob(pattern) if self.match(p.relative_to(run_dir)))

    def match(self, relpath: str | os.PathLike) -> dict[str, str] | None:
        """The fields of ``relpath`` (relative to the run directory) if it is this artifact."""
        found = self.regex.match(Path(relpath).as_posix())
        return found.groupdict() if found else None

    def parse(self, path: str | os.PathLike) -> dict[str, str] | None:
        """The fields of a file given by its path, matched on as many trailing parts as the
        name has (``.../predictions/sub-0001_seg.nii.gz`` -> ``{"subject": "sub-0001"}``)."""
        depth = self.name.count("/") + 1
        tail = Path(*Path(path).parts[-depth:])
        return self.match(tail)


ALL_KINDS = tuple(RunKind)
_ANALYSIS = (RunKind.ENSEMBLE_ANALYSIS,)
_REGION = ("factor", "subject", "label", "region", "kind")

#: every run directory
MANIFEST = Artifact("manifest.json", FileFormat.JSON, ALL_KINDS,
                    description="what ran, with which configuration, status and environment")  # fmt: skip
#: every run directory while a job writes it (harness.runs.lock)
RUN_LOCK = Artifact("run.lock", FileFormat.LOCK, ALL_KINDS,
                    description="exclusive lock of the writing job: pid, host, start, token "
                                "(present only while the run is being written)")  # fmt: skip
RUN_LOCK_BREAK = Artifact("run.break.lock", FileFormat.LOCK, ALL_KINDS,
                          description="guard taken while a stale run.lock is broken "
                                      "(present for an instant)")  # fmt: skip

# cohorts (harness data synth; users' cohorts follow the same layout)
PARTICIPANTS = Artifact(
    "participants.tsv", FileFormat.TSV, (RunKind.COHORT,), keys=("participant_id",),
    columns=("participant_id", "age", "sex", "group"),
    description="one row per subject: age, sex, group",
)  # fmt: skip
LABELS = Artifact(
    "labels.tsv", FileFormat.TSV, (RunKind.COHORT,), keys=("label",),
    columns=("label", "name", "kind"), description="label id, region name, tissue kind",
)  # fmt: skip
T1 = Artifact("{subject}/anat/{subject}_T1w.nii.gz", FileFormat.NIFTI, (RunKind.COHORT,),
              description="T1-weighted image, uint8")  # fmt: skip
DSEG = Artifact("{subject}/anat/{subject}_dseg.nii.gz", FileFormat.NIFTI, (RunKind.COHORT,),
                description="ground-truth label map, FreeSurfer ids")  # fmt: skip
# imported cohorts (harness data import)
IMPORT_REPORT = Artifact(
    "import_report.tsv", FileFormat.TSV, (RunKind.COHORT,), keys=("source_id",),
    columns=("source_id", "participant_id", "status", "reason", "t1", "labels", "shape",
             "voxel_mm", "remapped_voxels"),
    description="one row per source subject: imported or skipped, and why",
)  # fmt: skip
SOURCE_GEOMETRY = Artifact(
    "{subject}/anat/{subject}_source.json", FileFormat.JSON, (RunKind.COHORT,),
    description="where an imported subject came from: file, shape and affine of the input "
    "(for the inverse of the conform), BIDS entities",
)  # fmt: skip

# training runs and ensemble members (harness/train/run.py)
HISTORY = Artifact(
    "history.tsv", FileFormat.TSV, (RunKind.TRAIN,), keys=("view", "epoch"),
    columns=("view", "epoch", "loss", "dice_loss", "ce_loss", "lr", "steps", "seconds"),
    db=DbTable.METRICS, description="loss per view and epoch",
)  # fmt: skip
CHECKPOINT = Artifact("checkpoints/{view}.pt", FileFormat.TORCH, (RunKind.TRAIN,),
                      description="model and optimiser state of one view, for resuming")  # fmt: skip
PREDICTION = Artifact("predictions/{subject}_seg.nii.gz", FileFormat.NIFTI,
                      (RunKind.TRAIN, RunKind.CLASSICAL_SAMPLE, RunKind.CLASSICAL_REFERENCE),
                      description="predicted label map, int32 FreeSurfer ids, cohort grid")  # fmt: skip
PROBABILITIES = Artifact("predictions/{subject}_prob.npy", FileFormat.NPY, (RunKind.TRAIN,),
                         description="class probabilities, float16 (79, X, Y, Z), optional")  # fmt: skip

# ensemble analysis (harness/ensemble/analyze.py)
VOLUMES = Artifact(
    "volumes.tsv", FileFormat.TSV, _ANALYSIS, keys=("member", *_REGION),
    columns=("member", *_REGION, "volume_mm3"), description="regional volume per member",
)  # fmt: skip
DICE_TO_TRUTH = Artifact(
    "dice_to_truth.tsv", FileFormat.TSV, _ANALYSIS, keys=("member", *_REGION),
    columns=("member", *_REGION, "dice"), description="Dice of each member to the ground truth",
)  # fmt: skip
MIN_PAIRWISE_DICE = Artifact(
    "min_pairwise_dice.tsv", FileFormat.TSV, _ANALYSIS, keys=_REGION,
    columns=(*_REGION, "n_members", "min_dice", "matched_size", "matched_min_dice"),
    db=DbTable.METRICS,
    description="minimum pairwise Dice across a factor's members (the stability metric), and "
    "its mean over subsets of the matched member count",
)  # fmt: skip
MAJORITY_VOTE = Artifact(
    "majority_vote.tsv", FileFormat.TSV, _ANALYSIS, keys=_REGION,
    columns=(*_REGION, "dice_majority", "dice_baseline"), db=DbTable.METRICS,
    description="Dice to truth of the members' majority vote and of the baseline",
)  # fmt: skip
VOLUME_SIG_BITS = Artifact(
    "volume_sig_bits.tsv", FileFormat.TSV, _ANALYSIS, keys=_REGION,
    columns=(*_REGION, "sig_bits"), db=DbTable.METRICS,
    description="significant bits of regional volumes against the baseline's",
)  # fmt: skip
PROB_SIG_BITS = Artifact(
    "prob_sig_bits.tsv", FileFormat.TSV, _ANALYSIS, keys=("factor", "subject"),
    columns=("factor", "subject", "sig_bits_median", "sig_bits_mean"), db=DbTable.METRICS,
    description="significant bits of class probabilities (when members saved them)",
)  # fmt: skip
REGION_SUMMARY = Artifact(
    "region_summary.tsv", FileFormat.TSV, _ANALYSIS, keys=("factor", "label", "region", "kind"),
    columns=("factor", "label", "region", "kind", "mean_dice_to_truth", "n_members",
             "mean_min_dice", "mean_matched_min_dice", "truth_volume_mm3"),
    db=DbTable.METRICS, description="per factor and region, means over subjects",
)  # fmt: skip
_STABILITY = ("min_dice", "matched_min_dice", "dice_to_truth")
STABILITY_SUMMARY = Artifact(
    "stability_summary.tsv", FileFormat.TSV, _ANALYSIS, keys=("factor", "kind"),
    columns=("factor", "kind", "n_members", "matched_size", "n_subjects", "n_regions",
             *(f"{q}{s}" for q in _STABILITY for s in ("", "_low", "_high"))),
    db=DbTable.METRICS,
    description="per factor and tissue kind: median over regions of the minimum pairwise Dice "
    "(all members and matched size) and of Dice to truth, 95% bootstrap intervals over subjects",
)  # fmt: skip
FACTOR_CORRELATION = Artifact(
    "factor_correlation.tsv", FileFormat.TSV, _ANALYSIS, keys=("factor_a", "factor_b", "kind"),
    columns=("factor_a", "factor_b", "kind", "n_members_a", "n_members_b", "pearson_r",
             "partial_r", "n_regions"),
    db=DbTable.METRICS,
    description="correlation between factors of per-region instability, and its partial "
    "correlation controlling for log region size",
)  # fmt: skip
ENTROPY_MAP = Artifact("entropy_{factor}_{subject}.nii.gz", FileFormat.NIFTI, _ANALYSIS,
                       description="voxel-wise label entropy across a factor's members (bits)")  # fmt: skip
STABILITY_FIGURE = Artifact("figures/min_pairwise_dice.png", FileFormat.PNG, _ANALYSIS,
                            description="mean minimum pairwise Dice per region and factor")  # fmt: skip
INSTABILITY_SCATTER = Artifact("figures/instability_scatter.png", FileFormat.PNG, _ANALYSIS,
                               description="per-region instability, one factor against another")  # fmt: skip

# the atlas-registration pipeline (harness/classical/)
_CLASSICAL_RUNS = (RunKind.CLASSICAL_SAMPLE, RunKind.CLASSICAL_REFERENCE)
CLASSICAL_TEMPLATE_T1 = Artifact(
    "template/template_T1w.nii.gz", FileFormat.NIFTI, (RunKind.CLASSICAL, RunKind.CLASSICAL_REFERENCE),
    description="the template image registered to every subject (cohort grid)",
)  # fmt: skip
CLASSICAL_TEMPLATE_DSEG = Artifact(
    "template/template_dseg.nii.gz", FileFormat.NIFTI,
    (RunKind.CLASSICAL, RunKind.CLASSICAL_REFERENCE),
    description="the template's label map on the cohort grid (labels are transferred from the "
    "1 mm atlas)",
)  # fmt: skip
REGISTRATION_TIMES = Artifact(
    "timings.tsv", FileFormat.TSV, _CLASSICAL_RUNS, keys=("subject",),
    columns=("subject", "seconds", "threads"), db=DbTable.METRICS,
    description="wall-clock seconds of one subject's registration and label transfer",
)  # fmt: skip
REFERENCE_DICE = Artifact(
    "reference_dice.tsv", FileFormat.TSV, (RunKind.CLASSICAL_REFERENCE,),
    keys=("subject", "label", "region", "kind"),
    columns=("subject", "label", "region", "kind", "dice"), db=DbTable.METRICS,
    description="Dice to truth of the SimpleITK reference registration, per subject and region",
)  # fmt: skip
_COMPARISON = (RunKind.CLASSICAL_COMPARISON,)
CLASSICAL_COMPARISON = Artifact(
    "stability_comparison.tsv", FileFormat.TSV, _COMPARISON, keys=("pipeline", "factor", "kind"),
    columns=("pipeline", "factor", "kind", "n_members", "n_subjects", "n_regions", "min_dice",
             "min_dice_low", "min_dice_high", "dice_to_truth", "dice_to_truth_low",
             "dice_to_truth_high"),
    db=DbTable.METRICS,
    description="per pipeline, factor and tissue kind: median over regions of the minimum "
    "pairwise Dice and of Dice to truth with 95% bootstrap intervals (from each run's "
    "stability_summary.tsv; the SimpleITK reference has Dice to truth only)",
)  # fmt: skip
CLASSICAL_REGION_COMPARISON = Artifact(
    "region_comparison.tsv", FileFormat.TSV, _COMPARISON,
    keys=("pipeline", "factor", "label", "region", "kind"),
    columns=("pipeline", "factor", "label", "region", "kind", "n_members", "mean_min_dice",
             "mean_dice_to_truth"),
    db=DbTable.METRICS,
    description="per pipeline, factor and region: mean over subjects of the minimum pairwise "
    "Dice and of Dice to truth",
)  # fmt: skip
CLASSICAL_COMPARISON_FIGURE = Artifact(
    "figures/classical_vs_cnn.png", FileFormat.PNG, _COMPARISON,
    description="minimum pairwise Dice per tissue kind, classical pipeline vs CNN ensembles, "
    "with 95% intervals",
)  # fmt: skip

# brain age (harness/brainage/run.py)
_BRAINAGE = (RunKind.BRAINAGE,)
#: metrics of one split (harness.brainage.protocol)
BRAINAGE_METRICS = ("mae", "rmse", "r", "r2", "mae_perturbed", "pred_sd", "pred_range")
_RUN_KEYS = ("regressor", "augmentation", "k")
BRAINAGE_RESULTS = Artifact(
    "results.tsv", FileFormat.TSV, _BRAINAGE, keys=(*_RUN_KEYS, "split"),
    columns=(*_RUN_KEYS, "split", "n_repeats", *BRAINAGE_METRICS), db=DbTable.METRICS,
    description="metrics per regressor, augmentation, ensemble size k and split",
)  # fmt: skip
BRAINAGE_SUMMARY = Artifact(
    "summary.tsv", FileFormat.TSV, _BRAINAGE, keys=_RUN_KEYS,
    columns=(*_RUN_KEYS, "n_splits",
             *(f"{m}_{s}" for m in BRAINAGE_METRICS for s in ("mean", "ci_low", "ci_high"))),
    db=DbTable.METRICS, description="mean and 95% CI over splits of each metric",
)  # fmt: skip
BRAINAGE_ROBUSTNESS = Artifact(
    "robustness.tsv", FileFormat.TSV, _BRAINAGE, keys=("regressor", "k", "split"),
    columns=(*_RUN_KEYS, "split", "subject", "age", "pred_sd", "pred_range",
             "abs_error_perturbed"),
    db=DbTable.METRICS, description="spread of each test subject's predicted age across members",
)  # fmt: skip
BRAINAGE_PREDICTIONS = Artifact(
    "predictions.tsv", FileFormat.TSV, _BRAINAGE, keys=(*_RUN_KEYS, "split", "subject"),
    columns=(*_RUN_KEYS, "split", "subject", "age", "predicted"),
    description="predicted age of each test subject",
)  # fmt: skip
BRAINAGE_COMPARISON = Artifact(
    "comparison.tsv", FileFormat.TSV, _BRAINAGE, keys=("regressor", "k", "arm_a", "arm_b"),
    columns=("regressor", "k", "arm_a", "arm_b", "n_subjects", "mae_a", "mae_b", "diff_mean",
             "diff_ci_low", "diff_ci_high", "diff_sd", "wilcoxon_p", "mde_80",
             "power_anchor_effect"),
    db=DbTable.METRICS,
    description="paired per-subject comparison of augmentation arms at the largest k, minimum "
    "detectable difference and power to detect the anchor's effect",
)  # fmt: skip
BRAINAGE_EVALUATION = Artifact(
    "evaluation.tsv", FileFormat.TSV, _BRAINAGE, keys=_RUN_KEYS,
    columns=(*_RUN_KEYS, "n_subjects", "mae", "mae_ci_low", "mae_ci_high", "rmse", "r", "r2",
             "bias_slope", "bias_intercept"),
    db=DbTable.METRICS,
    description="pooled test predictions: MAE with 95% bootstrap interval over subjects, R^2, "
    "age-bias slope; the mean and median baselines beside the models",
)  # fmt: skip
BRAINAGE_GROUPS = Artifact(
    "evaluation_by_group.tsv", FileFormat.TSV, _BRAINAGE,
    keys=(*_RUN_KEYS, "group_by", "group"),
    columns=(*_RUN_KEYS, "group_by", "group", "n_subjects", "mae", "mae_ci_low", "mae_ci_high",
             "rmse", "r", "r2", "bias_slope", "bias_intercept"),
    db=DbTable.METRICS,
    description="evaluation.tsv per site and per sex of the test subjects",
)  # fmt: skip
BRAINAGE_TUNING = Artifact(
    "tuning.tsv", FileFormat.TSV, _BRAINAGE, keys=("regressor", "split"),
    columns=("regressor", "split", "params", "inner_mae"),
    description="hyper-parameters chosen by inner cross-validation on each training set (--tune)",
)  # fmt: skip
MAE_FIGURE = Artifact("figures/mae_vs_k.png", FileFormat.PNG, _BRAINAGE,
                      description="MAE against ensemble size")  # fmt: skip
PREDICTED_FIGURE = Artifact("figures/predicted_vs_true.png", FileFormat.PNG, _BRAINAGE,
                            description="predicted against true age")  # fmt: skip

# experiments (harness/experiments/)
SWEEP = Artifact(
    "sweep.tsv", FileFormat.TSV, (RunKind.SWEEP,), keys=("mode",),
    columns=("mode", "runs", "identical_runs", "weights_sig_bits_min", "weights_sig_bits_median",
             "weights_sig_bits_mean", "final_loss_mean", "final_loss_sig_bits", "step_ms",
             "step_time_vs_ieee"),
    db=DbTable.METRICS, description="significant bits of weights and loss per perturbation mode",
)  # fmt: skip
GRANULARITY = Artifact(
    "granularity.tsv", FileFormat.TSV, (RunKind.GRANULARITY,),
    keys=("granularity", "mode", "quantity"),
    columns=("granularity", "mode", "quantity", "sig_bits_median", "sig_bits_mean", "sig_bits_min"),
    db=DbTable.METRICS, description="significant bits at op level and kernel level",
)  # fmt: skip

# introspection (harness/introspect/)
_INTROSPECT = (RunKind.INTROSPECT,)
SPECTRA = Artifact(
    "spectra.parquet", FileFormat.PARQUET, _INTROSPECT,
    keys=("run", "epoch", "step", "layer", "group", "quantity", "index"),
    columns=("run", "epoch", "step", "layer", "group", "quantity", "index", "value", "group_size"),
    db=DbTable.SPECTRA, description="singular values per layer, group, quantity and step",
)  # fmt: skip
INTROSPECT_STATS = Artifact(
    "stats.tsv", FileFormat.TSV, _INTROSPECT,
    keys=("epoch", "step", "layer", "group", "quantity"), columns=None, db=DbTable.METRICS,
    description="comparison of groups' spectra (columns depend on the run)",
)  # fmt: skip
INTROSPECT_CHECKPOINT = Artifact("checkpoint.pt", FileFormat.TORCH, _INTROSPECT,
                                 description="model and optimiser after the last epoch")  # fmt: skip
SPECTRA_FIGURE = Artifact("figures/{layer}.png", FileFormat.PNG, _INTROSPECT,
                          description="spectra trajectories of one layer")  # fmt: skip

# inference on users' scans (harness segment): members/<member>/ and analysis/ follow the
# ensemble layout (harness.runs.layout); cohort/ holds a --scan input imported as a cohort
_SEGMENT = (RunKind.SEGMENT,)
SEGMENT_SAMPLE = Artifact("members/{member}/predictions/{subject}_seg.nii.gz", FileFormat.NIFTI,
                          _SEGMENT, description="one sample's label map on the conformed grid "
                          "(member baseline = IEEE, rr-01.. perturbed)")  # fmt: skip
SEGMENT_SUBJECTS = Artifact(
    "subjects.tsv", FileFormat.TSV, _SEGMENT, keys=("subject",),
    columns=("subject", "samples", "seconds", "seconds_per_sample", "changed_voxels",
             "max_entropy_bits"),
    db=DbTable.METRICS,
    description="per subject: samples run, wall time, voxels where the samples disagree, "
    "largest voxel entropy",
)  # fmt: skip
NATIVE_SEG_NIFTI = Artifact("outputs/{subject}_desc-{desc}_dseg.nii.gz", FileFormat.NIFTI,
                            _SEGMENT, description="label map in the input's space (desc ieee or "
                            "majority), NIfTI")  # fmt: skip
NATIVE_SEG_MGZ = Artifact("outputs/{subject}_desc-{desc}_dseg.mgz", FileFormat.MGZ, _SEGMENT,
                          description="label map in the input's space, MGZ")  # fmt: skip
NATIVE_ENTROPY_NIFTI = Artifact("outputs/{subject}_desc-entropy_map.nii.gz", FileFormat.NIFTI,
                                _SEGMENT, description="voxel label entropy across the samples "
                                "(bits) in the input's space, NIfTI")  # fmt: skip
NATIVE_ENTROPY_MGZ = Artifact("outputs/{subject}_desc-entropy_map.mgz", FileFormat.MGZ, _SEGMENT,
                              description="voxel label entropy in the input's space, MGZ")  # fmt: skip
SEGMENT_VOLUMES = Artifact(
    "outputs/{subject}_volumes.tsv", FileFormat.TSV, _SEGMENT, keys=("label",), columns=None,
    description="aseg.stats-like table: per region voxels and volume (IEEE), and across the "
    "perturbed samples mean, sd, range and significant digits",
)  # fmt: skip
BIDS_DSEG = Artifact("derivatives/harness/{subject}/anat/{subject}_desc-{desc}_dseg.nii.gz",
                     FileFormat.NIFTI, _SEGMENT,
                     description="BIDS-derivatives label map (inputs read from BIDS)")  # fmt: skip
BIDS_DESCRIPTION = Artifact("derivatives/harness/dataset_description.json", FileFormat.JSON,
                            _SEGMENT, description="BIDS-derivatives dataset description")  # fmt: skip

# benchmarks and reports (harness/experiments/demo.py)
KERNEL_BENCH = Artifact("bench-kernels.json", FileFormat.JSON, (RunKind.KERNEL_BENCH,),
                        description="pytest-benchmark JSON of the kernel microbenchmarks")  # fmt: skip
REPORT_HTML = Artifact("report.html", FileFormat.HTML, (RunKind.REPORT,),
                       description="self-contained stability report")  # fmt: skip
REPORT_MD = Artifact("report.md", FileFormat.MARKDOWN, (RunKind.REPORT,),
                     description="the report's Markdown summary")  # fmt: skip

# benchmark suites run in container images (harness containers bench)
_CONTAINER_BENCH = (RunKind.CONTAINER_BENCH,)
CONTAINER_BENCH = Artifact("bench-{image}.json", FileFormat.JSON, _CONTAINER_BENCH,
                           description="pytest-benchmark JSON of the suites run in one image, "
                                       "with the image and the fingerprint taken inside")  # fmt: skip
CONTAINER_BENCH_DB = Artifact("harness.duckdb", FileFormat.DUCKDB, _CONTAINER_BENCH,
                              description="results database the image results were ingested "
                                          "into (when --db is not given)")  # fmt: skip

# kernel-level validation against Verificarlo (harness/experiments/vfc_validate.py); the inputs
# and samples are written by harness.kernels.cases and the runner (harness.kernels.vfc_runner)
_VALIDATE = (RunKind.KERNELS_VALIDATE,)
_VALIDATE_KEYS = ("input", "dtype", "output")
VALIDATION = Artifact(
    "validation.tsv", FileFormat.TSV, _VALIDATE, keys=(*_VALIDATE_KEYS, "engine"),
    columns=(*_VALIDATE_KEYS, "engine", "t", "sig_bits_mean", "sig_bits_min", "varying_frac",
             "exact_frac", "bias_ulp_mean", "bias_ulp_maxabs"),
    db=DbTable.METRICS, description="per input, dtype, output and engine: significant bits, "
    "exactness, bias in ulps",
)  # fmt: skip
VALIDATION_TESTS = Artifact(
    "tests.tsv", FileFormat.TSV, _VALIDATE, keys=(*_VALIDATE_KEYS, "harness", "verificarlo"),
    columns=(*_VALIDATE_KEYS, "harness", "verificarlo", "elements", "welch_rejected",
             "welch_p_min", "spread_rejected", "spread_p_min", "pooled_p", "pooled_rejected"),
    db=DbTable.METRICS, description="two-sample tests of a harness engine against a Verificarlo "
    "backend (Holm-corrected)",
)  # fmt: skip
VALIDATION_REPORT = Artifact("validation-report.md", FileFormat.MARKDOWN, _VALIDATE,
                             description="the tables printed by harness kernels validate")  # fmt: skip
VALIDATION_CASES = Artifact("inputs/cases.json", FileFormat.JSON, _VALIDATE,
                            description="shapes, seed and list of the validation cases")  # fmt: skip
VALIDATION_INPUT = Artifact("inputs/{case}/{array}.npy", FileFormat.NPY, _VALIDATE,
                            description="one input array of one case (mounted into the image)")  # fmt: skip
VALIDATION_SAMPLES = Artifact("samples/{engine}/{case}/{output}.npy", FileFormat.NPY, _VALIDATE,
                              description="(samples, ...) values of one output from one "
                              "Verificarlo backend")  # fmt: skip
VALIDATION_RUNNER = Artifact("samples/{engine}/run.json", FileFormat.JSON, _VALIDATE,
                             description="one backend's run: VFC_BACKENDS, version, seconds")  # fmt: skip

#: every declaration of this module, in the order declared
ARTIFACTS: tuple[Artifact, ...] = tuple(
    v for v in dict(globals()).values() if isinstance(v, Artifact)
)


_BY_NAME = {a.name: a for a in ARTIFACTS}


def artifact_named(name: str | Artifact) -> Artifact:
    """The declared artifact called ``name`` (an :class:`Artifact` is returned as is).

    Raises
    ------
    InputError
        If no artifact has that name: a new run file is declared in this module first.
    """
    if isinstance(name, Artifact):
        return name
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InputError(
            f"run file {name!r} is not declared in harness.runs.catalogue (ARTIFACTS)"
        ) from None


def artifacts_of(kind: RunKind) -> tuple[Artifact, ...]:
    """The artifacts a run of ``kind`` may hold."""
    return tuple(a for a in ARTIFACTS if kind in a.kinds)


def database_artifacts(kind: RunKind | None) -> tuple[Artifact, ...]:
    """The artifacts of a ``kind`` run that the results database loads (none for an unknown
    kind)."""
    if kind is None:
        return ()
    return tuple(a for a in artifacts_of(kind) if a.db is not DbTable.NONE)


def find_artifact(kind: RunKind, relpath: str | os.PathLike) -> Artifact | None:
    """The artifact of a ``kind`` run that ``relpath`` (relative to the run directory) is."""
    for artifact in artifacts_of(kind):
        if artifact.match(relpath) is not None:
            return artifact
    return None
