"""Cohort directories (BIDS-like) and their validation.

Layout (docs/CONTRACTS.md)::

    COHORT/participants.tsv      participant_id  age  sex  group
    COHORT/labels.tsv            label  name  kind
    COHORT/sub-0001/anat/sub-0001_T1w.nii.gz
    COHORT/sub-0001/anat/sub-0001_dseg.nii.gz    (integer labels, FreeSurfer ids)

``participant_id`` and ``age`` are required; ``sex`` and ``group`` default to ``"n/a"``.
``labels.tsv`` is optional for user data (then label names come from FreeSurfer's LUT).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.runs import catalogue

PARTICIPANTS = catalogue.PARTICIPANTS.name
LABELS = catalogue.LABELS.name
LABEL_KINDS = ("cortical", "subcortical", "wm", "csf", "background")


def t1_path(root: Path, subject: str) -> Path:
    return catalogue.T1.path(root, subject=subject)


def dseg_path(root: Path, subject: str) -> Path:
    return catalogue.DSEG.path(root, subject=subject)


@dataclass(frozen=True)
class Subject:
    """One participant: identifiers, covariates and file paths."""

    participant_id: str
    age: float
    sex: str
    group: str
    t1: Path
    dseg: Path | None


@dataclass
class Cohort:
    """A validated cohort; build it with :func:`load_cohort`."""

    root: Path
    subjects: list[Subject]
    labels: object = None  # pandas DataFrame (label, name, kind) or None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.subjects)

    @property
    def ids(self) -> list[str]:
        return [s.participant_id for s in self.subjects]

    @property
    def ages(self) -> np.ndarray:
        return np.array([s.age for s in self.subjects], dtype=np.float64)

    @property
    def groups(self) -> list[str]:
        return [s.group for s in self.subjects]

    def subject(self, participant_id: str) -> Subject:
        for s in self.subjects:
            if s.participant_id == participant_id:
                return s
        raise InputError(f"participant_id must be one of the cohort's, got {participant_id!r}")

    def table(self):
        """The participants as a DataFrame with file paths."""
        import pandas as pd

        return pd.DataFrame(
            {
                "participant_id": self.ids,
                "age": self.ages,
                "sex": [s.sex for s in self.subjects],
                "group": self.groups,
                "t1": [str(s.t1) for s in self.subjects],
                "dseg": [str(s.dseg) if s.dseg else "" for s in self.subjects],
            }
        )


def _read_tsv(path: Path):
    import pandas as pd

    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"cohort must contain {path.name}, got no file at {str(path)!r}") from None
    except Exception as exc:
        raise InputError(f"{path.name} must be a readable TSV file, got {exc}") from None


def _parse_age(pid: str, text: str, require_age: bool) -> float:
    if not require_age and text.strip().lower() in ("", "n/a"):
        return float("nan")
    try:
        age = float(text)
    except ValueError:
        raise InputError(f"age of {pid} must be a number, got {text!r}") from None
    if not np.isfinite(age) or not 0 < age < 130:
        raise InputError(f"age of {pid} must be a finite number in (0, 130), got {text!r}")
    return age


def _parse_participants(frame, path: Path, require_age: bool = True) -> list[dict]:
    missing = [c for c in ("participant_id", "age") if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path.name} must have columns participant_id and age, missing {missing} "
            f"(found {list(frame.columns)})"
        )
    if len(frame) == 0:
        raise InputError(f"{path.name} must list at least one participant, got 0 rows")
    duplicated = frame["participant_id"][frame["participant_id"].duplicated()].tolist()
    if duplicated:
        raise InputError(f"participant_id must be unique, got duplicates {duplicated[:5]}")
    rows = []
    for _, row in frame.iterrows():
        pid = row["participant_id"].strip()
        if not pid.startswith("sub-") or len(pid) <= 4:
            raise InputError(f"participant_id must look like 'sub-<label>', got {pid!r}")
        age = _parse_age(pid, row["age"], require_age)
        rows.append(
            {
                "participant_id": pid,
                "age": age,
                "sex": (row.get("sex") or "n/a").strip() or "n/a",
                "group": (row.get("group") or "n/a").strip() or "n/a",
            }
        )
    return rows


def _parse_labels(frame, path: Path):
    missing = [c for c in ("label", "name", "kind") if c not in frame.columns]
    if missing:
        raise InputError(f"{path.name} must have columns label, name, kind, missing {missing}")
    try:
        frame = frame.assign(label=frame["label"].astype(int))
    except ValueError:
        raise InputError(f"{path.name} column label must hold integers") from None
    bad = sorted(set(frame["kind"]) - set(LABEL_KINDS))
    if bad:
        raise InputError(f"{path.name} column kind must be one of {list(LABEL_KINDS)}, got {bad}")
    return frame


def load_cohort(
    root: str | os.PathLike,
    *,
    require_labels: bool = True,
    check_volumes: bool = False,
    require_age: bool = True,
) -> Cohort:
    """Read and validate a cohort directory.

    Parameters
    ----------
    root : path-like
        The cohort directory.
    require_labels : bool
        Every subject must have a ``_dseg`` label map (training); False accepts T1-only cohorts.
    check_volumes : bool
        Also load every volume and check finiteness, image/label shape and affine agreement and
        non-empty label maps (slower; ``harness data check`` does it).
    require_age : bool
        Every participant must have an age; False accepts ``n/a`` (age NaN), as in imported
        cohorts without covariates, for inference.

    Returns
    -------
    Cohort

    Raises
    ------
    InputError
        Missing directory, table, column, file or age, or any invalid volume.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"cohort directory must exist, got {str(root)!r}")
    rows = _parse_participants(_read_tsv(root / PARTICIPANTS), root / PARTICIPANTS, require_age)
    labels = (
        _parse_labels(_read_tsv(root / LABELS), root / LABELS) if (root / LABELS).exists() else None
    )
    subjects = []
    for row in rows:
        pid = row["participant_id"]
        t1, dseg = t1_path(root, pid), dseg_path(root, pid)
        if not t1.is_file():
            raise InputError(f"subject {pid} must have a T1 image at {str(t1)!r}, file not found")
        if not dseg.is_file():
            if require_labels:
                raise InputError(
                    f"subject {pid} must have a label map at {str(dseg)!r}, file not found"
                )
            dseg = None
        subjects.append(Subject(t1=t1, dseg=dseg, **row))
    cohort = Cohort(root=root, subjects=subjects, labels=labels)
    if check_volumes:
        cohort.extra["volumes"] = check_cohort_volumes(cohort)
    return cohort


def check_cohort_volumes(cohort: Cohort) -> list[dict]:
    """Load every subject's volumes, validate them, and return one summary dict per subject."""
    from harness.data.io import check_label_map, check_pair, load_volume

    summaries = []
    for s in cohort.subjects:
        image, affine, header = load_volume(s.t1, name=f"{s.participant_id} T1")
        summary = {
            "participant_id": s.participant_id,
            "shape": "x".join(str(n) for n in image.shape),
            "voxel_mm": "x".join(f"{z:g}" for z in header.get_zooms()[:3]),
            "labels": 0,
        }
        if s.dseg is not None:
            labels, label_affine, _ = load_volume(s.dseg, name=f"{s.participant_id} dseg")
            check_pair(image.shape, affine, labels.shape, label_affine, name=s.participant_id)
            labels = check_label_map(labels, name=f"{s.participant_id} dseg")
            summary["labels"] = int(np.unique(labels).size - 1)
        summaries.append(summary)
    return summaries
