"""Import users' data into a harness cohort: a FreeSurfer ``SUBJECTS_DIR`` or a BIDS dataset.

Sources (:class:`SourceLayout`):

- **FreeSurfer** ``SUBJECTS_DIR``: one folder per subject with ``mri/orig.mgz`` (the T1) and,
  for labels, ``mri/aparc.DKTatlas+aseg.mgz`` (or ``mri/aparc+aseg.mgz``). Ages, sex and group come
  from an optional ``participants.tsv`` (``participant_id`` = folder name or ``sub-<folder>``).
- **BIDS**: ``sub-*/anat/sub-*_T1w.nii[.gz]`` (or ``sub-*/ses-*/anat/...``, the first session and
  run), labels from ``derivatives/freesurfer/sub-*/mri/aparc.DKTatlas+aseg.mgz``, covariates from
  the dataset's ``participants.tsv``.

Each image is conformed as FastSurfer does (:func:`harness.data.conform.conform`: default 256^3,
1 mm, LIA, uint8 robust rescale; ``size``/``voxel_size`` give a smaller grid; a uint8 image
already on such a grid, like FreeSurfer's ``orig.mgz``, is kept as it is), each label map is
resampled by nearest neighbour onto the same grid and cleaned
(:func:`harness.data.labels.clean_freesurfer_labels`). The cohort has the layout of synthetic
cohorts (:mod:`harness.data.cohort`) plus an import report (:data:`~harness.runs.catalogue.
IMPORT_REPORT`) and, per subject, the input's geometry (:data:`~harness.runs.catalogue.
SOURCE_GEOMETRY`) so that outputs can be resampled back into the input's space.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.runs import catalogue


class SourceLayout(Enum):
    """How the source directory is organised."""

    FREESURFER = "freesurfer"
    BIDS = "bids"

    @classmethod
    def detect(cls, root: Path) -> SourceLayout:
        """BIDS when ``dataset_description.json`` or ``sub-*/anat`` exist, FreeSurfer when a
        folder holds ``mri/orig.mgz``."""
        if (
            (root / "dataset_description.json").exists()
            or any(root.glob("sub-*/anat"))
            or any(root.glob("sub-*/ses-*/anat"))
        ):
            return cls.BIDS
        if any(root.glob("*/mri/orig.mgz")):
            return cls.FREESURFER
        raise InputError(
            f"source must be a BIDS dataset (sub-*/anat/*_T1w.nii.gz) or a FreeSurfer "
            f"SUBJECTS_DIR (*/mri/orig.mgz), got neither in {str(root)!r}"
        )


#: label maps looked for in a FreeSurfer subject's ``mri/`` folder, in order of preference
LABEL_FILES = ("aparc.DKTatlas+aseg.mgz", "aparc+aseg.mgz")
#: FreeSurfer folders that are templates, not subjects
TEMPLATE_SUBJECTS = ("fsaverage", "fsaverage5", "fsaverage6", "fsaverage_sym", "bert_template")
_ENTITY = re.compile(r"[^A-Za-z0-9]")


@dataclass
class SourceSubject:
    """One subject found in a source directory, before any volume is read."""

    source_id: str
    participant_id: str
    t1: Path | None
    labels: Path | None
    bids: dict = field(default_factory=dict)  # BIDS entities (sub, ses, run) when from BIDS
    problem: str = ""  # why it cannot be imported (missing T1, ...), found during discovery


@dataclass(frozen=True)
class ImportOptions:
    """Target grid and what to import."""

    size: int = 256
    voxel_size: float = 1.0
    labels: bool = True  # import label maps (False: T1 only)
    skip_bad: bool = False  # skip subjects that fail a check instead of stopping


def participant_id_for(name: str) -> str:
    """A BIDS participant id for a folder name: ``bert`` -> ``sub-bert``, ``sub-01`` kept;
    characters other than letters and digits are dropped from the label."""
    label = name[4:] if name.startswith("sub-") else name
    label = _ENTITY.sub("", label)
    if not label:
        raise InputError(f"subject folder name must contain letters or digits, got {name!r}")
    return f"sub-{label}"


def discover_freesurfer(root: Path, *, labels: bool = True) -> list[SourceSubject]:
    """Subjects of a FreeSurfer ``SUBJECTS_DIR`` (folders with ``mri/``), sorted by name."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "mri").is_dir()):
        if folder.name in TEMPLATE_SUBJECTS:
            continue
        t1 = folder / "mri" / "orig.mgz"
        label = next((folder / "mri" / n for n in LABEL_FILES if (folder / "mri" / n).is_file()),
                     None) if labels else None  # fmt: skip
        subject = SourceSubject(folder.name, participant_id_for(folder.name), t1, label)
        if not t1.is_file():
            subject.problem = f"missing T1 {t1.relative_to(root)}"
        elif labels and label is None:
            subject.problem = f"missing label map mri/{LABEL_FILES[0]}"
        found.append(subject)
    return found


def _bids_t1(anat_dirs: list[Path]) -> list[Path]:
    files = []
    for anat in anat_dirs:
        files += sorted(anat.glob("*_T1w.nii.gz")) + sorted(anat.glob("*_T1w.nii"))
    return files


def _entities(path: Path) -> dict:
    name = path.name.split(".")[0]
    return dict(part.split("-", 1) for part in name.split("_") if "-" in part)


def discover_bids(root: Path, *, labels: bool = True) -> list[SourceSubject]:
    """Subjects of a BIDS dataset: the first T1w per subject (sessions and runs in sorted order),
    labels from ``derivatives/freesurfer/<sub>/mri/``."""
    found = []
    for folder in sorted(p for p in root.glob("sub-*") if p.is_dir()):
        anat = [folder / "anat"] + sorted(folder.glob("ses-*/anat"))
        t1s = _bids_t1([a for a in anat if a.is_dir()])
        pid = participant_id_for(folder.name)
        fs_dir = root / "derivatives" / "freesurfer" / folder.name / "mri"
        label = next((fs_dir / n for n in LABEL_FILES if (fs_dir / n).is_file()),
                     None) if labels else None  # fmt: skip
        subject = SourceSubject(folder.name, pid, t1s[0] if t1s else None, label)
        if t1s:
            subject.bids = _entities(t1s[0])
        if not t1s:
            subject.problem = f"missing T1 {folder.name}/anat/{folder.name}_T1w.nii.gz"
        elif labels and label is None:
            subject.problem = (
                f"missing label map derivatives/freesurfer/{folder.name}/mri/{LABEL_FILES[0]}"
            )
        found.append(subject)
    return found


def read_covariates(path: Path | None) -> dict[str, dict]:
    """participant_id -> {age, sex, group} from a participants.tsv (missing values ``n/a``)."""
    if path is None or not Path(path).is_file():
        return {}
    import pandas as pd

    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if "participant_id" not in frame.columns:
        raise InputError(
            f"{Path(path).name} must have a participant_id column, got {list(frame.columns)}"
        )
    out = {}
    for _, row in frame.iterrows():
        pid = participant_id_for(row["participant_id"].strip())
        out[pid] = {c: (row.get(c) or "n/a").strip() or "n/a" for c in ("age", "sex", "group")}
    return out


def _voxel_sizes(affine: np.ndarray) -> list[float]:
    return [float(v) for v in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))]


def conform_subject(subject: SourceSubject, options: ImportOptions) -> dict:
    """Load, check and conform one subject's T1 (and label map).

    Returns
    -------
    dict
        ``image`` (uint8), ``labels`` (int32 or None), ``affine`` (conformed), ``source``
        (geometry record), ``remapped`` (voxels changed by label cleaning).

    Raises
    ------
    InputError
        Unreadable, non-3-D or non-finite volumes; label map of another shape or affine than the
        T1; empty label map; label ids no cleaning rule maps.
    """
    from harness.data.conform import conform, is_conformed, resample_to
    from harness.data.io import check_label_map, check_pair, load_volume
    from harness.data.labels import clean_freesurfer_labels

    name = subject.source_id
    data, affine, _ = load_volume(subject.t1, name=f"{name} T1")
    if data.dtype == np.uint8 and is_conformed(data.shape, affine, size=options.size,
                                               voxel_size=options.voxel_size):  # fmt: skip
        image, conformed = np.asarray(data), np.asarray(affine)  # kept as is, as FastSurfer does
    else:
        image, conformed = conform(data, affine, size=options.size, voxel_size=options.voxel_size)
    labels, remapped = None, {}
    if subject.labels is not None:
        raw, label_affine, _ = load_volume(subject.labels, name=f"{name} labels")
        check_pair(data.shape, affine, raw.shape, label_affine, name=name)
        raw = check_label_map(raw, name=f"{name} labels ({subject.labels.name})")
        cleaned, remapped = clean_freesurfer_labels(raw)
        labels = resample_to(cleaned, affine, conformed, image.shape, order=0).astype(np.int32)
        check_label_map(labels, name=f"{name} labels after conforming")
    source = {
        "source_id": name, "t1": str(subject.t1), "labels": str(subject.labels or ""),
        "shape": [int(n) for n in data.shape], "affine": np.asarray(affine).tolist(),
        "conformed_affine": conformed.tolist(), "bids": subject.bids,
    }  # fmt: skip
    return {"image": image, "labels": labels, "affine": conformed, "source": source,
            "remapped": remapped, "shape": data.shape, "voxel_mm": _voxel_sizes(affine)}  # fmt: skip


def _check_options(options: ImportOptions) -> None:
    if not isinstance(options.size, int) or options.size < 16:
        raise InputError(f"size must be an integer of at least 16 voxels, got {options.size!r}")
    if not options.voxel_size > 0:
        raise InputError(f"voxel_size must be positive, got {options.voxel_size!r}")


def _covariates(pid: str, covariates: dict) -> dict:
    row = covariates.get(pid, {})
    return {"participant_id": pid, "age": row.get("age", "n/a"), "sex": row.get("sex", "n/a"),
            "group": row.get("group", "n/a")}  # fmt: skip


def import_dataset(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    layout: SourceLayout | None = None,
    options: ImportOptions | None = None,
    participants: str | os.PathLike | None = None,
    progress: bool = True,
):
    """Import a FreeSurfer ``SUBJECTS_DIR`` or a BIDS dataset into a harness cohort.

    Parameters
    ----------
    source : path-like
        The source directory.
    out_dir : path-like
        The cohort directory to write.
    layout : SourceLayout, optional
        Default: :meth:`SourceLayout.detect`.
    options : ImportOptions, optional
        Target grid, labels or not, ``skip_bad``.
    participants : path-like, optional
        participants.tsv with age/sex/group (default: the source's own ``participants.tsv``).
    progress : bool
        A tqdm bar over subjects.

    Returns
    -------
    report : pandas.DataFrame
        The rows of :data:`~harness.runs.catalogue.IMPORT_REPORT`.

    Raises
    ------
    InputError
        A missing source, no subject found, or (without ``skip_bad``) the first subject that
        fails a check; with ``skip_bad``, when no subject could be imported.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from harness.data.cohort import dseg_path, t1_path
    from harness.data.io import save_volume
    from harness.runs import RunDir, RunKind

    root = Path(source)
    if not root.is_dir():
        raise InputError(f"source must be an existing directory, got {str(root)!r}")
    options = options or ImportOptions()
    _check_options(options)
    layout = layout or SourceLayout.detect(root)
    discover = discover_bids if layout is SourceLayout.BIDS else discover_freesurfer
    subjects = discover(root, labels=options.labels)
    if not subjects:
        raise InputError(f"source {str(root)!r} must contain at least one subject, got none")
    table = participants if participants is not None else root / "participants.tsv"
    covariates = read_covariates(Path(table) if table else None)
    if participants is not None and not Path(participants).is_file():
        raise InputError(f"--participants must be an existing file, got {str(participants)!r}")
    config = {"source": str(root.resolve()), "layout": layout.value, "size": options.size,
              "voxel_size": options.voxel_size, "labels": options.labels,
              "orientation": "LIA"}  # fmt: skip
    run = RunDir(out_dir, kind=RunKind.COHORT)
    run.start("data import", config)
    rows, report = [], []
    with run.failure_recorded():
        for subject in tqdm(subjects, desc="import", unit="subject", disable=not progress):
            row = {"source_id": subject.source_id, "participant_id": subject.participant_id,
                   "status": "imported", "reason": "", "t1": str(subject.t1 or ""),
                   "labels": str(subject.labels or ""), "shape": "", "voxel_mm": "",
                   "remapped_voxels": 0}  # fmt: skip
            try:
                if subject.problem:
                    raise InputError(f"{subject.source_id}: {subject.problem}")
                if any(r["participant_id"] == subject.participant_id for r in rows):
                    raise InputError(
                        f"{subject.source_id}: participant_id "
                        f"{subject.participant_id} is taken by another folder"
                    )
                result = conform_subject(subject, options)
            except InputError as exc:
                if not options.skip_bad:
                    raise
                report.append(row | {"status": "skipped", "reason": str(exc)})
                continue
            pid = subject.participant_id
            save_volume(t1_path(run.path, pid), result["image"], result["affine"])
            if result["labels"] is not None:
                save_volume(dseg_path(run.path, pid), result["labels"], result["affine"])
            run.write_json(catalogue.SOURCE_GEOMETRY, result["source"] | {"layout": layout.value},
                           subject=pid)  # fmt: skip
            rows.append(_covariates(pid, covariates))
            report.append(row | {
                "shape": "x".join(str(n) for n in result["shape"]),
                "voxel_mm": "x".join(f"{v:.4g}" for v in result["voxel_mm"]),
                "remapped_voxels": int(sum(result["remapped"].values())),
            })  # fmt: skip
        frame = pd.DataFrame(report, columns=list(catalogue.IMPORT_REPORT.columns))
        run.write_table(catalogue.IMPORT_REPORT, frame)
        if not rows:
            raise InputError(
                f"no subject of {str(root)!r} could be imported "
                f"(see {catalogue.IMPORT_REPORT.name})"
            )
        run.write_table(catalogue.PARTICIPANTS, pd.DataFrame(rows))
        run.write_table(catalogue.LABELS, fastsurfer_label_table())
        run.finish(imported=len(rows), skipped=len(report) - len(rows))
    return frame


def fastsurfer_label_table():
    """labels.tsv rows for every id FastSurfer segments (both hemispheres' parcels)."""
    import pandas as pd

    from harness.data.labels import DKT_PARCELS, LUT_FULL, label_kind, label_name

    ids = sorted(set(LUT_FULL) | {2000 + k for k in DKT_PARCELS})
    return pd.DataFrame(
        {"label": ids, "name": [label_name(i) for i in ids], "kind": [label_kind(i) for i in ids]}
    )


def load_source_geometry(cohort: str | os.PathLike, subject: str) -> dict | None:
    """The recorded input geometry of an imported subject (None for a synthetic cohort)."""
    from harness.runs import read_json

    path = catalogue.SOURCE_GEOMETRY.path(cohort, subject=subject)
    return read_json(path) if path.exists() else None


def scan_participant_id(scan: Path) -> str:
    """A participant id from a scan's file name: ``sub-01_T1w.nii.gz`` -> ``sub-01``,
    ``bert.mgz`` -> ``sub-bert``."""
    stem = scan.name.split(".")[0]
    entities = _entities(scan)
    if "sub" in entities:
        return participant_id_for(f"sub-{entities['sub']}")
    return participant_id_for(stem.removesuffix("_T1w"))


def import_scan(
    scan: str | os.PathLike, out_dir: str | os.PathLike, *, options: ImportOptions | None = None
) -> str:
    """Import one T1 scan (no labels) as a one-subject cohort; returns its participant id."""
    import pandas as pd

    from harness.data.cohort import t1_path
    from harness.data.io import save_volume
    from harness.runs import RunDir, RunKind

    scan = Path(scan)
    options = ImportOptions(size=(options or ImportOptions()).size,
                            voxel_size=(options or ImportOptions()).voxel_size, labels=False)  # fmt: skip
    _check_options(options)
    pid = scan_participant_id(scan)
    subject = SourceSubject(scan.name, pid, scan, None, bids=_entities(scan))
    if not scan.is_file():
        raise InputError(f"--scan must be an existing file, got {str(scan)!r}")
    run = RunDir(out_dir, kind=RunKind.COHORT)
    run.start("segment --scan", {"scan": str(scan.resolve()), "size": options.size,
                                 "voxel_size": options.voxel_size})  # fmt: skip
    with run.failure_recorded():
        result = conform_subject(subject, options)
        save_volume(t1_path(run.path, pid), result["image"], result["affine"])
        run.write_json(catalogue.SOURCE_GEOMETRY, result["source"] | {"layout": "scan"},
                       subject=pid)  # fmt: skip
        run.write_table(catalogue.PARTICIPANTS, pd.DataFrame([_covariates(pid, {})]))
        run.write_table(catalogue.LABELS, fastsurfer_label_table())
        run.finish(imported=1, skipped=0)
    return pid
