"""Readers of brain-age inputs: aseg.stats parsing, member tables, ensemble directories, errors."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.brainage.io import (
    parse_aseg_stats,
    read_aseg_dir,
    read_ensemble,
    read_member_tables,
    read_participants,
)
from harness.errors import InputError
from helpers.brainage import synthetic_data, write_member_tables

ASEG = """\
# Title Segmentation Statistics
#
# generating_program mri_segstats
# Measure BrainSeg, BrainSegVol, Brain Segmentation Volume, 1100000.000000, mm^3
# Measure EstimatedTotalIntraCranialVol, eTIV, Estimated Total Intracranial Volume, {etiv}, mm^3
# NRows 3
# NTableCols 10
# ColHeaders  Index SegId NVoxels Volume_mm3 StructName normMean normStdDev normMin normMax normRange
  1   4     6591     {lv}  Left-Lateral-Ventricle   33.6   11.9   11.0  88.0  77.0
  2  17     4210     4210.5  Left-Hippocampus   78.2    9.0   31.0 107.0  76.0
  3  53     4302     4302.0  Right-Hippocampus  77.9    8.8   30.0 105.0  75.0
"""


def write_aseg(path: Path, etiv=1558382.16, lv=6591.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ASEG.format(etiv=etiv, lv=lv))
    return path


def write_participants(path: Path, ids, ages) -> Path:
    pd.DataFrame({"participant_id": ids, "age": ages, "sex": "M", "group": "control"}).to_csv(
        path, sep="\t", index=False
    )
    return path


def test_parse_aseg_stats_hand_written(tmp_path):
    table, measures = parse_aseg_stats(write_aseg(tmp_path / "aseg.stats"))
    assert list(table["StructName"]) == [
        "Left-Lateral-Ventricle",
        "Left-Hippocampus",
        "Right-Hippocampus",
    ]
    assert table["Volume_mm3"].tolist() == [6591.0, 4210.5, 4302.0]
    assert table["SegId"].tolist() == [4, 17, 53]
    assert measures["EstimatedTotalIntraCranialVol"] == pytest.approx(1558382.16)
    assert measures["eTIV"] == measures["EstimatedTotalIntraCranialVol"]
    assert measures["BrainSegVol"] == 1100000.0


def test_parse_aseg_stats_rejects_short_rows_and_missing_header(tmp_path):
    bad = tmp_path / "bad.stats"
    bad.write_text(ASEG.format(etiv=1.0, lv=1.0).replace("4210.5  Left-Hippocampus", "4210.5"))
    with pytest.raises(InputError, match="must have 10 fields"):
        parse_aseg_stats(bad)
    headerless = tmp_path / "headerless.stats"
    headerless.write_text("# Title\n1 4 10 10.0 X\n")
    with pytest.raises(InputError, match="before the '# ColHeaders'"):
        parse_aseg_stats(headerless)


def test_read_aseg_dir_both_layouts_and_etiv(tmp_path):
    root = tmp_path / "stats"
    for member, lv in (("baseline", 6591.0), ("seed-01", 6600.0)):
        write_aseg(root / member / "sub-01.stats", etiv=1.5e6, lv=lv)
        write_aseg(root / member / "sub-02" / "stats" / "aseg.stats", etiv=1.6e6, lv=lv + 1)
    parts = write_participants(tmp_path / "participants.tsv", ["sub-01", "sub-02"], [30, 60])
    data = read_aseg_dir(root, parts)
    assert data.members == ("baseline", "seed-01")
    assert data.subjects == ("01", "02")
    assert data.volumes.shape == (2, 2, 3)
    lv = data.regions.index("Left-Lateral-Ventricle")
    assert data.volumes[:, :, lv].tolist() == [[6591.0, 6592.0], [6600.0, 6601.0]]
    np.testing.assert_allclose(data.etiv, [[1.5e6, 1.6e6], [1.5e6, 1.6e6]])
    np.testing.assert_array_equal(data.ages, [30, 60])


def test_member_tables_round_trip(tmp_path):
    original = synthetic_data(n_subjects=6, n_regions=3, n_members=2)
    directory = write_member_tables(original, tmp_path / "tables")
    elsewhere = (directory / "participants.tsv").rename(tmp_path / "ages.tsv")
    (directory / "participants.csv").write_text("participant_id,age\nsub-0001,30\n")
    data = read_member_tables(directory, elsewhere)
    assert data.members == original.members
    np.testing.assert_allclose(data.volumes, original.volumes)
    np.testing.assert_allclose(data.ages, original.ages)


@pytest.fixture
def tables(tmp_path):
    return write_member_tables(
        synthetic_data(n_subjects=6, n_regions=3, n_members=2), tmp_path / "t"
    )


def test_missing_age_is_a_clear_error(tables):
    parts = pd.read_csv(tables / "participants.tsv", sep="\t")
    parts.iloc[:-1].to_csv(tables / "participants.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"needs an age.*0006"):
        read_member_tables(tables, tables / "participants.tsv")


def test_non_numeric_age_is_a_clear_error(tables):
    parts = pd.read_csv(tables / "participants.tsv", sep="\t")
    parts["age"] = parts["age"].astype(object)
    parts.loc[2, "age"] = "unknown"
    parts.to_csv(tables / "participants.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"age must be a finite number.*sub-0003|0003"):
        read_participants(tables / "participants.tsv")


def test_missing_baseline_is_a_clear_error(tables):
    (tables / "baseline.tsv").rename(tables / "other.tsv")
    with pytest.raises(InputError, match="'baseline'"):
        read_member_tables(tables, tables / "participants.tsv")


def test_subject_mismatch_between_members(tables):
    frame = pd.read_csv(tables / "seed-01.tsv", sep="\t")
    frame.iloc[1:].to_csv(tables / "seed-01.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"same subjects.*seed-01.*0001"):
        read_member_tables(tables, tables / "participants.tsv")


def test_region_mismatch_between_members(tables):
    frame = pd.read_csv(tables / "seed-02.tsv", sep="\t")
    frame.rename(columns={"Right-Lateral-Ventricle": "Left-Putamen"}).to_csv(
        tables / "seed-02.tsv", sep="\t", index=False
    )
    with pytest.raises(InputError, match=r"same regions.*seed-02"):
        read_member_tables(tables, tables / "participants.tsv")


def test_malformed_tables(tables):
    frame = pd.read_csv(tables / "seed-01.tsv", sep="\t")
    frame.rename(columns={"subject": "who"}).to_csv(tables / "seed-01.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="subject id column"):
        read_member_tables(tables, tables / "participants.tsv")
    frame["Left-Lateral-Ventricle"] = frame["Left-Lateral-Ventricle"].astype(object)
    frame.loc[0, "Left-Lateral-Ventricle"] = "n/a"
    frame.to_csv(tables / "seed-01.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="finite numbers.*seed-01"):
        read_member_tables(tables, tables / "participants.tsv")
    pd.DataFrame({"participant_id": ["sub-0001"]}).to_csv(tables / "participants.tsv", sep="\t")
    with pytest.raises(InputError, match="participant_id and age"):
        read_participants(tables / "participants.tsv")


def _ensemble(tmp_path: Path) -> Path:
    data = synthetic_data(n_subjects=5, n_regions=2, n_members=3)
    rows = []
    for m, member in enumerate(data.members):
        factor = "baseline" if m == 0 else ("seed" if m < 3 else "mca-sr")
        for s, subject in enumerate(data.subjects):
            rows.append((member, factor, subject, 0, "background", 1e7))
            for r, region in enumerate(data.regions):
                rows.append((member, factor, subject, r + 2, region, data.volumes[m, s, r]))
    ens = tmp_path / "ens"
    (ens / "analysis").mkdir(parents=True)
    columns = ["member", "factor", "subject", "label", "region", "volume_mm3"]
    pd.DataFrame(rows, columns=columns).to_csv(
        ens / "analysis" / "volumes.tsv", sep="\t", index=False
    )
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    write_participants(cohort / "participants.tsv", list(data.subjects), data.ages)
    (ens / "manifest.json").write_text(json.dumps({"config": {"cohort": str(cohort)}}))
    return ens


def test_read_ensemble_finds_cohort_drops_background_and_filters_factor(tmp_path):
    ens = _ensemble(tmp_path)
    data = read_ensemble(ens)
    assert data.members == ("baseline", "seed-01", "seed-02", "seed-03")
    assert "background" not in data.regions and data.volumes.shape == (4, 5, 2)
    seed_only = read_ensemble(ens, factor="seed")
    assert seed_only.members == ("baseline", "seed-01", "seed-02")
    with pytest.raises(InputError, match="factor must be one of"):
        read_ensemble(ens, factor="nope")
