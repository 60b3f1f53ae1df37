"""A synthetic cohort written like FreeSurfer output, for the worked example of
docs/brainage-own-table.md (and the tests of the table readers).

Per subject s (age ``a[s] ~ U(20, 80)``) and region r: ``V[s, r] = base[r] (1 + slope[r]
(a[s] - 50) / 50) (1 + 0.1 z[s, r]) h[s] site[s]`` — an age trend per region, 10%
subject-specific anatomy, a head size ``h ~ N(1, 0.1)`` (clipped to [0.7, 1.3]) and a site
factor ``1 ± 0.015``; ``EstimatedTotalIntraCranialVol = 1.5e6 h (1 + 0.02 z)``. The table has
the ``asegstats2table`` layout: ``Measure:volume`` first, the aseg regions, then
``BrainSegVol``, ``EstimatedTotalIntraCranialVol`` and ``BrainSegVol-to-eTIV``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.brainage.regions import DK_REGIONS
from harness.runs.catalogue import PARTICIPANTS

_ASEG = ("Lateral-Ventricle", "Hippocampus", "Thalamus", "Caudate", "Putamen", "Pallidum",
         "Amygdala", "Accumbens-area", "Cerebellum-Cortex", "VentralDC")  # fmt: skip
#: FreeSurfer-named regions of the synthetic data: aseg structures, then aparc volumes
REGION_NAMES = (
    *(f"{side}-{s}" for s in _ASEG for side in ("Left", "Right")),
    "3rd-Ventricle", "4th-Ventricle", "Brain-Stem", "CSF",
    *(f"{h}_{r}_volume" for r in sorted(DK_REGIONS) for h in ("lh", "rh")),
)  # fmt: skip


def region_names(n_regions: int) -> tuple[str, ...]:
    """The first ``n_regions`` of :data:`REGION_NAMES`, sorted."""
    if not 1 <= n_regions <= len(REGION_NAMES):
        raise ValueError(f"n_regions must be in 1..{len(REGION_NAMES)}, got {n_regions}")
    return tuple(sorted(REGION_NAMES[:n_regions]))


def freesurfer_example_table(
    n_subjects: int = 200, n_regions: int = 24, n_sites: int = 2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The example cohort: an ``asegstats2table``-style table and a BIDS participants table.

    Returns
    -------
    table : DataFrame
        First column ``Measure:volume`` (``sub-0001`` ...), then the region and summary columns.
    participants : DataFrame
        ``participant_id``, ``age``, ``sex``, ``site``.
    """
    rng = np.random.default_rng(seed)
    ages = np.round(rng.uniform(20, 80, n_subjects), 1)
    base = rng.uniform(1_000, 20_000, n_regions)
    slope = rng.uniform(-0.3, 0.1, n_regions)
    trend = base * (1 + slope * (ages[:, None] - 50) / 50)
    anatomy = trend * (1 + 0.1 * rng.standard_normal((n_subjects, n_regions)))
    extra = np.random.default_rng([seed, 17])
    head = np.clip(extra.normal(1.0, 0.1, n_subjects), 0.7, 1.3)
    site = extra.integers(0, n_sites, n_subjects)
    site_effect = 1 + 0.03 * (site - (n_sites - 1) / 2)
    volumes = anatomy * (head * site_effect)[:, None]
    subjects = [f"sub-{i:04d}" for i in range(1, n_subjects + 1)]
    table = pd.DataFrame(volumes.round(1), columns=list(region_names(n_regions)))
    etiv = 1.5e6 * head * (1 + 0.02 * extra.standard_normal(n_subjects))
    table["BrainSegVol"] = (volumes.sum(axis=1) + 9e5 * head).round(1)
    table["EstimatedTotalIntraCranialVol"] = etiv.round(1)
    table["BrainSegVol-to-eTIV"] = (table["BrainSegVol"] / etiv).round(6)
    table.insert(0, "Measure:volume", subjects)
    participants = pd.DataFrame(
        {
            "participant_id": subjects,
            "age": ages,
            "sex": extra.choice(["F", "M"], n_subjects),
            "site": [f"site{s + 1}" for s in site],
        }
    )
    return table, participants


def write_freesurfer_example(
    directory: str | Path, n_subjects: int = 300, n_test: int = 100, seed: int = 0
) -> Path:
    """Write ``aseg_train.tsv`` and ``aseg_test.tsv`` (the last ``n_test`` subjects;
    asegstats2table layout, tab separated) and a BIDS ``participants.tsv`` of every subject
    under ``directory``; return ``directory``."""
    if not 0 <= n_test < n_subjects:
        raise ValueError(f"n_test must be in 0..{n_subjects - 1}, got {n_test}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table, participants = freesurfer_example_table(n_subjects, seed=seed)
    table.iloc[: n_subjects - n_test].to_csv(directory / "aseg_train.tsv", sep="\t", index=False)
    table.iloc[n_subjects - n_test :].to_csv(directory / "aseg_test.tsv", sep="\t", index=False)
    participants.to_csv(PARTICIPANTS.path(directory), sep="\t", index=False)
    return directory
