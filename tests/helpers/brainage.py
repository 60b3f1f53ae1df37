"""Synthetic brain-age inputs with known ages and member noise, for the tests.

Volumes follow ``V[m, s, r] = base[r] * (1 + slope[r] * (age[s] - 50) / 50) * (1 + subject[s, r])
* (1 + member[m, s, r])``: an age-dependent trend per region, subject-specific anatomy and a small
per-member relative perturbation (zero for the baseline), like a numerically-perturbed ensemble.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.brainage.example import region_names
from harness.brainage.io import BrainAgeData
from harness.runs import BASELINE
from harness.runs.catalogue import PARTICIPANTS


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
    regions = region_names(n_regions)  # FreeSurfer names: the default feature declaration
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
