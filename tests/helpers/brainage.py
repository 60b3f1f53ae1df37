"""Synthetic brain-age inputs with known ages and member noise, for the tests.

Volumes follow ``V[m, s, r] = base[r] * (1 + slope[r] * (age[s] - 50) / 50) * (1 + subject[s, r])
* (1 + member[m, s, r])``: an age-dependent trend per region, subject-specific anatomy and a small
per-member relative perturbation (zero for the baseline), like a numerically-perturbed ensemble.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.brainage.io import BrainAgeData
from harness.brainage.regions import DK_REGIONS
from harness.runs import BASELINE
from harness.runs.catalogue import PARTICIPANTS

_ASEG = ("Lateral-Ventricle", "Hippocampus", "Thalamus", "Caudate", "Putamen", "Pallidum",
         "Amygdala", "Accumbens-area", "Cerebellum-Cortex", "VentralDC")  # fmt: skip
#: FreeSurfer-named regions of the synthetic data: aseg structures, then aparc volumes
REGION_NAMES = (
    *(f"{side}-{s}" for s in _ASEG for side in ("Left", "Right")),
    "3rd-Ventricle", "4th-Ventricle", "Brain-Stem", "CSF",
    *(f"{h}_{r}_volume" for r in sorted(DK_REGIONS) for h in ("lh", "rh")),
)  # fmt: skip


def synthetic_data(
    n_subjects: int = 40,
    n_regions: int = 8,
    n_members: int = 4,
    member_noise: float = 0.02,
    subject_noise: float = 0.05,
    seed: int = 0,
) -> BrainAgeData:
    """Make a :class:`BrainAgeData` with ``n_members`` perturbed members plus the baseline."""
    rng = np.random.default_rng(seed)
    ages = np.round(rng.uniform(20, 80, n_subjects), 1)
    base = rng.uniform(1_000, 20_000, n_regions)
    slope = rng.uniform(-0.3, 0.1, n_regions)
    trend = base * (1 + slope * (ages[:, None] - 50) / 50)
    anatomy = trend * (1 + subject_noise * rng.standard_normal((n_subjects, n_regions)))
    perturb = member_noise * rng.standard_normal((n_members + 1, n_subjects, n_regions))
    perturb[0] = 0.0
    volumes = anatomy[None] * (1 + perturb)
    members = (BASELINE, *(f"seed-{i:02d}" for i in range(1, n_members + 1)))
    subjects = tuple(f"sub-{i:04d}" for i in range(1, n_subjects + 1))
    if n_regions > len(REGION_NAMES):
        raise ValueError(f"n_regions must be <= {len(REGION_NAMES)}, got {n_regions}")
    regions = tuple(sorted(REGION_NAMES[:n_regions]))
    return BrainAgeData(members, subjects, regions, volumes, ages)


def write_member_tables(data: BrainAgeData, directory: str | Path) -> Path:
    """Write ``DIR/<member>.tsv`` per member and ``DIR/participants.tsv``; return ``DIR``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for m, member in enumerate(data.members):
        frame = pd.DataFrame(data.volumes[m], columns=list(data.regions))
        frame.insert(0, "subject", list(data.subjects))
        frame.to_csv(directory / f"{member}.tsv", sep="\t", index=False)
    participants = pd.DataFrame(
        {"participant_id": list(data.subjects), "age": data.ages, "sex": "F", "group": "control"}
    )
    participants.to_csv(PARTICIPANTS.path(directory), sep="\t", index=False)
    return directory


def synthetic_freesurfer_table(
    n_subjects: int = 200, n_regions: int = 24, n_sites: int = 2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A cohort as FreeSurfer users have it: an ``asegstats2table``-style table and participants.

    Volumes are those of :func:`synthetic_data` (one member, 10% subject-specific anatomy) scaled
    by a per-subject head size ``h ~ N(1, 0.1)``;
    ``EstimatedTotalIntraCranialVol = 1.5e6 h (1 + 0.02 z)``, plus the
    whole-brain ``BrainSegVol`` and the ratio ``BrainSegVol-to-eTIV`` that asegstats2table
    writes. Sites shift every volume by a few percent (a scanner effect).

    Returns
    -------
    table : DataFrame
        First column ``Measure:volume`` (``sub-0001`` ...), then the region and summary columns.
    participants : DataFrame
        BIDS ``participant_id``, ``age``, ``sex``, ``site``.
    """
    rng = np.random.default_rng([seed, 17])
    data = synthetic_data(n_subjects, n_regions, n_members=0, subject_noise=0.1, seed=seed)
    head = np.clip(rng.normal(1.0, 0.1, n_subjects), 0.7, 1.3)
    site = rng.integers(0, n_sites, n_subjects)
    site_effect = 1 + 0.03 * (site - (n_sites - 1) / 2)
    volumes = data.volumes[0] * (head * site_effect)[:, None]
    table = pd.DataFrame(volumes.round(1), columns=list(data.regions))
    etiv = 1.5e6 * head * (1 + 0.02 * rng.standard_normal(n_subjects))
    table["BrainSegVol"] = (volumes.sum(axis=1) + 9e5 * head).round(1)
    table["EstimatedTotalIntraCranialVol"] = etiv.round(1)
    table["BrainSegVol-to-eTIV"] = (table["BrainSegVol"] / etiv).round(6)
    table.insert(0, "Measure:volume", list(data.subjects))
    participants = pd.DataFrame(
        {
            "participant_id": list(data.subjects),
            "age": data.ages,
            "sex": rng.choice(["F", "M"], n_subjects),
            "site": [f"site{s + 1}" for s in site],
        }
    )
    return table, participants


def write_freesurfer_example(
    directory: str | Path, n_subjects: int = 300, n_test: int = 100, seed: int = 0
) -> Path:
    """Write ``aseg_train.tsv``, ``aseg_test.tsv`` (asegstats2table layout, tab separated) and
    a BIDS ``participants.tsv`` for all subjects under ``directory``; return ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table, participants = synthetic_freesurfer_table(n_subjects, seed=seed)
    table.iloc[: n_subjects - n_test].to_csv(directory / "aseg_train.tsv", sep="\t", index=False)
    table.iloc[n_subjects - n_test :].to_csv(directory / "aseg_test.tsv", sep="\t", index=False)
    participants.to_csv(PARTICIPANTS.path(directory), sep="\t", index=False)
    return directory
