"""``harness segment``: FastSurferCNN inference on a cohort or a single scan, optionally under
stochastic arithmetic, with outputs in the input's space.

Run directory (kind :attr:`harness.runs.RunKind.SEGMENT`; files declared in
:mod:`harness.runs.catalogue`)::

    OUT/manifest.json
    OUT/cohort/                       a --scan input, imported as a one-subject cohort
    OUT/members/baseline/predictions/<subject>_seg.nii.gz   IEEE, conformed grid
    OUT/members/<mode>-01..N/predictions/...                perturbed samples (ensemble layout)
    OUT/analysis/                     harness.ensemble.analyze_ensemble (minimum pairwise Dice,
                                      entropy maps, volumes' significant bits; Dice to truth
                                      only where the cohort has labels)
    OUT/subjects.tsv                  per subject: samples, seconds, disagreeing voxels
    OUT/outputs/<subject>_desc-{ieee,majority}_dseg.{nii.gz,mgz}   in the input's space
    OUT/outputs/<subject>_desc-entropy_map.{nii.gz,mgz}           in the input's space
    OUT/outputs/<subject>_volumes.tsv  aseg.stats-like table
    OUT/derivatives/harness/...       BIDS derivatives (inputs imported from BIDS)

Sample ``k`` (1..N) runs under ``StochasticArithmetic(mode, precision, seed=derive_seed(seed,
"mca", k))``; the baseline is IEEE. The majority vote and the entropy are taken over the
perturbed samples.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.perturb import Mode
from harness.runs import catalogue
from harness.segment.outputs import OutputFormat

VIEWS = ("axial", "coronal", "sagittal")
#: checkpoint file names looked for in a --checkpoints directory, per view (harness, then v1)
CHECKPOINT_NAMES = {
    view: (f"{view}.pt", f"{view.capitalize()}_Weights_FastSurferCNN/ckpts/Epoch_30_training_state.pkl",
           f"{view}.pkl")
    for view in VIEWS
}  # fmt: skip
COHORT_DIR = "cohort"
OUTPUTS_DIR = "outputs"


@dataclass(frozen=True)
class SegmentConfig:
    """What to run: checked by :meth:`check`, recorded in the manifest."""

    checkpoints: dict = field(default_factory=dict)  # view -> Path
    mode: Mode = Mode.IEEE
    samples: int = 0
    precision: int | None = None
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 16
    output_format: OutputFormat = OutputFormat.NIFTI

    def check(self) -> None:
        if not self.checkpoints:
            raise InputError(
                "checkpoints must name at least one view (--checkpoint-axial, "
                "--checkpoint-coronal, --checkpoint-sagittal or --checkpoints DIR)"
            )
        unknown = sorted(set(self.checkpoints) - set(VIEWS))
        if unknown:
            raise InputError(f"checkpoint views must be among {list(VIEWS)}, got {unknown}")
        if self.mode is Mode.IEEE and self.samples:
            raise InputError(
                f"--samples needs a perturbation --mode (rr, sr, ud), got "
                f"--mode ieee with --samples {self.samples}"
            )
        if self.mode is not Mode.IEEE and self.samples < 1:
            raise InputError(
                f"--samples must be at least 1 with --mode {self.mode.value}, got {self.samples}"
            )
        if self.precision is not None and not 1 <= self.precision <= 53:
            raise InputError(f"--precision must lie in [1, 53], got {self.precision}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be positive, got {self.batch_size}")
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"--device must be one of ['cpu', 'cuda'], got {self.device!r}")

    def to_dict(self) -> dict:
        record = asdict(self)
        record["checkpoints"] = {v: str(Path(p).resolve()) for v, p in self.checkpoints.items()}
        record["mode"] = self.mode.value
        record["output_format"] = self.output_format.value
        return record

    @property
    def members(self) -> list[str]:
        from harness.runs.layout import BASELINE

        return [BASELINE] + [f"{self.mode.value}-{k:02d}" for k in range(1, self.samples + 1)]


def checkpoints_in(directory: str | os.PathLike) -> dict[str, Path]:
    """The per-view checkpoints found in a directory (a harness train run's ``checkpoints/``,
    or FastSurfer v1's ``<View>_Weights_FastSurferCNN/ckpts/`` tree)."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"--checkpoints must be an existing directory, got {str(root)!r}")
    found = {}
    for view, names in CHECKPOINT_NAMES.items():
        for name in names:
            for base in (root, root / "checkpoints"):
                if (base / name).is_file() and view not in found:
                    found[view] = base / name
    if not found:
        raise InputError(
            f"--checkpoints {str(root)!r} must hold <view>.pt or "
            f"<View>_Weights_FastSurferCNN/ckpts/Epoch_30_training_state.pkl, found none"
        )
    return found


def load_models(checkpoints: dict, device: str) -> tuple[dict, dict]:
    """``{view: model}`` on ``device`` and ``{view: layout}`` ("v1" or "harness")."""
    from harness.models.checkpoints import load_model_checkpoint
    from harness.models.fastsurfer import CLASSES_PER_VIEW

    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            from harness.errors import MissingDependencyError

            raise MissingDependencyError("--device cuda needs a CUDA device, none is available")
    models, layouts = {}, {}
    for view in VIEWS:
        if view in checkpoints:
            model, layouts[view] = load_model_checkpoint(
                checkpoints[view], num_classes=CLASSES_PER_VIEW[view]
            )
            models[view] = model.to(device)
    return models, layouts


def _check_grid(cohort, models) -> None:
    import nibabel as nib

    multiple = 2 ** max(m.depth for m in models.values())
    for subject in cohort.subjects:
        shape = nib.load(str(subject.t1)).shape[:3]
        if any(n % multiple for n in shape):
            raise InputError(
                f"{subject.participant_id}: conformed grid {shape} must be divisible by "
                f"2**depth = {multiple} for these checkpoints (import with --size a multiple "
                f"of {multiple})"
            )


def predict_sample(models: dict, image: np.ndarray, config: SegmentConfig, sample: int):
    """Label map of one sample: IEEE for ``sample == 0``, else under the perturbation."""
    from harness.perturb import StochasticArithmetic
    from harness.perturb.seeds import derive_seed
    from harness.segment.inference import predict_labels_streaming

    def run():
        return predict_labels_streaming(
            models, image, batch_size=config.batch_size, device=config.device
        )

    if sample == 0:
        return run()
    with StochasticArithmetic(mode=config.mode, precision=config.precision,
                              seed=derive_seed(config.seed, "mca", sample)):  # fmt: skip
        return run()


def segment(
    out: str | os.PathLike,
    config: SegmentConfig,
    *,
    cohort: str | os.PathLike | None = None,
    scan: str | os.PathLike | None = None,
    size: int = 256,
    voxel_size: float = 1.0,
    progress: bool = True,
) -> Path:
    """Segment a cohort (or one scan) and write the run directory described above.

    Parameters
    ----------
    out : path-like
        Run directory.
    config : SegmentConfig
    cohort, scan : path-like
        Exactly one: a cohort directory (``harness data import`` or ``harness data synth``), or a
        T1 file (NIfTI/MGZ) conformed to ``size``^3 at ``voxel_size`` mm first.

    Returns
    -------
    Path
        The run directory.
    """
    from harness.data.cohort import load_cohort
    from harness.runs import RunDir, RunKind

    if (cohort is None) == (scan is None):
        raise InputError("segment needs exactly one input: --cohort DIR or --scan FILE")
    config.check()
    models, layouts = load_models(config.checkpoints, config.device)
    out = Path(out)
    run = RunDir(out, kind=RunKind.SEGMENT)
    record = config.to_dict() | {"cohort": str(Path(cohort).resolve()) if cohort else None,
                                 "scan": str(Path(scan).resolve()) if scan else None}  # fmt: skip
    if run.completed_with(record, "a segment run") is not None:
        return out
    if scan is not None:
        from harness.data.importers import ImportOptions, import_scan

        import_scan(scan, out / COHORT_DIR, options=ImportOptions(size=size, voxel_size=voxel_size))
        cohort = out / COHORT_DIR
    loaded = load_cohort(cohort, require_labels=False, require_age=False)
    _check_grid(loaded, models)
    run.start("harness segment", record, checkpoint_layouts=layouts, members=config.members)
    with run.failure_recorded():
        rows = _segment_subjects(out, loaded, models, config, progress)
        run.write_table(catalogue.SEGMENT_SUBJECTS, rows)
        if config.samples >= 1:
            from harness.ensemble.analyze import analyze_ensemble

            analyze_ensemble(out, loaded.root, seed=config.seed, progress=progress)
        _write_outputs(out, loaded, config)
        run.finish(subjects=loaded.ids)
    return out


def _segment_subjects(out: Path, cohort, models: dict, config: SegmentConfig, progress: bool):
    import pandas as pd
    from tqdm.auto import tqdm

    from harness.data.io import load_volume
    from harness.metrics import label_entropy
    from harness.runs.layout import member_dir
    from harness.train.predict import write_prediction

    members = config.members
    rows = []
    bar = tqdm(total=len(cohort.subjects) * len(members), desc="segment", unit="sample",
               disable=not progress)  # fmt: skip
    for subject in cohort.subjects:
        pid = subject.participant_id
        image, affine, _ = load_volume(subject.t1, name=f"{pid} T1")
        started, segs = time.perf_counter(), []
        for sample, member in enumerate(members):
            bar.set_postfix_str(f"{pid} {member}")
            labels = predict_sample(models, np.asarray(image), config, sample)
            write_prediction(member_dir(out, member), pid, labels, affine)
            segs.append(labels)
            bar.update(1)
        seconds = time.perf_counter() - started
        perturbed = np.stack(segs[1:]) if len(segs) > 1 else None
        rows.append({
            "subject": pid, "samples": len(segs) - 1, "seconds": seconds,
            "seconds_per_sample": seconds / len(segs),
            "changed_voxels": int((perturbed != segs[0]).any(axis=0).sum())
            if perturbed is not None else 0,
            "max_entropy_bits": float(label_entropy(perturbed).max())
            if perturbed is not None else 0.0,
        })  # fmt: skip
    bar.close()
    return pd.DataFrame(rows, columns=list(catalogue.SEGMENT_SUBJECTS.columns))


def _load_members(out: Path, members: list[str], subject: str):
    import nibabel as nib

    from harness.runs.layout import prediction_path

    segs = {}
    for member in members:
        image = nib.load(str(prediction_path(out, member, subject)))
        segs[member] = np.asarray(image.dataobj).astype(np.int32)
    return segs, image.affine


def _write_outputs(out: Path, cohort, config: SegmentConfig) -> None:
    import pandas as pd

    from harness.data.importers import load_source_geometry
    from harness.ensemble.analyze import majority_vote
    from harness.metrics import label_entropy
    from harness.runs import atomic_write_table
    from harness.runs.layout import BASELINE
    from harness.segment.outputs import (
        geometry_or_conformed,
        to_native,
        volume_table,
        write_bids_derivatives,
        write_volume,
    )

    fmt = config.output_format
    labels = pd.read_csv(catalogue.LABELS.path(cohort.root), sep="\t")
    for subject in cohort.subjects:
        pid = subject.participant_id
        segs, conformed = _load_members(out, config.members, pid)
        source = load_source_geometry(cohort.root, pid)
        shape, affine = geometry_or_conformed(source, conformed, segs[BASELINE].shape)
        maps = {"ieee": segs[BASELINE]}
        perturbed = [s for m, s in segs.items() if m != BASELINE]
        if perturbed:
            maps["majority"] = majority_vote(np.stack(perturbed))
        files = {}
        for desc, seg in maps.items():
            path = fmt.seg_artifact().path(out, subject=pid, desc=desc)
            files[desc] = write_volume(path, to_native(seg, conformed, shape, affine)
                                       .astype(np.int32), affine)  # fmt: skip
        if perturbed:
            entropy = label_entropy(np.stack(perturbed)).astype(np.float32)
            write_volume(fmt.entropy_artifact().path(out, subject=pid),
                         to_native(entropy, conformed, shape, affine), affine)  # fmt: skip
        voxel_mm3 = float(f"{abs(np.linalg.det(np.asarray(conformed)[:3, :3])):.9g}")
        atomic_write_table(catalogue.SEGMENT_VOLUMES.path(out, subject=pid),
                           volume_table(segs, labels, voxel_mm3, BASELINE))  # fmt: skip
        if source is not None and source.get("layout") == "bids":
            if fmt is not OutputFormat.NIFTI:  # BIDS derivatives are NIfTI
                files = {d: write_volume(catalogue.NATIVE_SEG_NIFTI.path(out, subject=pid, desc=d),
                                         to_native(s, conformed, shape, affine).astype(np.int32),
                                         affine) for d, s in maps.items()}  # fmt: skip
            write_bids_derivatives(out, pid, files, source)
