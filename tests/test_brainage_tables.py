"""Wide tables as users have them: FreeSurfer names, declared features, metadata, ICV column."""

import numpy as np
import pandas as pd
import pytest

from harness.brainage.example import freesurfer_example_table
from harness.brainage.io import read_member_tables, read_table
from harness.brainage.regions import ColumnRole, classify_column, icv_column
from harness.brainage.tables import FeatureSpec, TableColumns, parse_column_list
from harness.errors import InputError


@pytest.mark.parametrize(
    "name",
    [
        "Left-Lateral-Ventricle", "Right-Inf-Lat-Vent", "Left-Thalamus-Proper", "Left-Thalamus",
        "3rd-Ventricle", "CC_Mid_Anterior", "WM-hypointensities", "Brain-Stem",
        "lh_bankssts_volume", "rh_insula_thickness", "lh_superiorfrontal_area",
        "rh_G_and_S_frontomargin_thickness", "lh_S_calcarine_volume", "lh_Lat_Fis-post_area",
        "lh.precuneus.thickness",
    ],
)  # fmt: skip
def test_freesurfer_region_spellings_are_regions(name):
    assert classify_column(name) is ColumnRole.REGION


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("age", ColumnRole.OTHER), ("sex", ColumnRole.OTHER), ("site", ColumnRole.OTHER),
        ("index", ColumnRole.OTHER), ("Left-Nonsense", ColumnRole.OTHER),
        ("lh_notaregion_volume", ColumnRole.OTHER), ("eTIV", ColumnRole.ICV),
        ("EstimatedTotalIntraCranialVol", ColumnRole.ICV), ("BrainSegVol-to-eTIV", ColumnRole.RATIO),
        ("MaskVol-to-eTIV", ColumnRole.RATIO), ("CSF_Ratio", ColumnRole.RATIO),
        ("BrainSegVolNotVent", ColumnRole.GLOBAL), ("lh_MeanThickness_thickness", ColumnRole.GLOBAL),
        ("rh_WhiteSurfArea_area", ColumnRole.GLOBAL), ("TotalGrayVol", ColumnRole.GLOBAL),
    ],
)  # fmt: skip
def test_other_columns_are_not_regions(name, role):
    assert classify_column(name) is role


def test_icv_column_preference():
    assert icv_column(["eTIV", "EstimatedTotalIntraCranialVol"]) == "EstimatedTotalIntraCranialVol"
    assert icv_column(["Left-Hippocampus"]) is None


def _asegstats2table(tmp_path, n=30, seed=0):
    """The layout asegstats2table writes: 'Measure:volume' first, tab-separated, eTIV mixed in."""
    table, participants = freesurfer_example_table(n_subjects=n, n_regions=6, seed=seed)
    table.to_csv(tmp_path / "aseg.tsv", sep="\t", index=False)
    participants.to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    return tmp_path / "aseg.tsv", tmp_path / "participants.tsv", table, participants


def test_asegstats2table_with_bids_participants(tmp_path):
    path, parts, table, participants = _asegstats2table(tmp_path)
    assert path.read_text().startswith("Measure:volume\t")
    data = read_table(path, parts)
    regions = [c for c in table.columns[1:] if classify_column(c) is ColumnRole.REGION]
    assert data.regions == tuple(regions) and len(regions) == 6
    assert data.members == ("baseline",) and data.volumes.shape == (1, 30, 6)
    assert data.subjects[0] == "0001"  # the sub- prefix is matched away
    np.testing.assert_allclose(data.ages, participants["age"])
    np.testing.assert_allclose(data.etiv[0], table["EstimatedTotalIntraCranialVol"])
    assert data.icv_source == "column EstimatedTotalIntraCranialVol"
    assert data.excluded == {
        "BrainSegVol": "whole-brain measure",
        "EstimatedTotalIntraCranialVol": "ICV column",
        "BrainSegVol-to-eTIV": "ratio",
        "age": "age column",
    }
    assert set(data.metadata.columns) == {"site", "sex"}
    assert list(data.metadata["site"]) == list(participants["site"])


def test_raw_table_with_age_sex_site_ids_never_uses_them(tmp_path):
    table, participants = freesurfer_example_table(n_subjects=20, n_regions=4, seed=2)
    raw = table.rename(columns={"Measure:volume": "sub_id"}).drop(
        columns=["EstimatedTotalIntraCranialVol", "BrainSegVol", "BrainSegVol-to-eTIV"]
    )
    raw.insert(0, "index", range(20))
    raw["age"] = participants["age"]
    raw["sex"] = (participants["sex"] == "F").astype(int)
    raw["site_number"] = participants["site"].str[-1].astype(int)
    raw.to_csv(tmp_path / "raw.csv", index=False)
    data = read_table(tmp_path / "raw.csv", columns=TableColumns(sex="sex"))
    assert "age" not in data.regions and "sex" not in data.regions
    assert data.regions == tuple(c for c in table.columns if c.startswith(("Left", "Right", "3rd")))
    assert data.excluded == {
        "index": "not a FreeSurfer region name", "age": "age column", "sex": "sex column",
        "site_number": "not a FreeSurfer region name",
    }  # fmt: skip
    np.testing.assert_allclose(data.ages, participants["age"])


def test_features_declared_explicitly_or_by_file_or_glob(tmp_path):
    path, parts, table, _ = _asegstats2table(tmp_path)
    data = read_table(path, parts, FeatureSpec(features=("Left-*",)))
    assert data.regions == tuple(c for c in table.columns if c.startswith("Left-"))
    listing = tmp_path / "features.txt"
    listing.write_text("# my features\nRight-Thalamus\nLeft-Hippocampus  # a comment\n\n")
    assert parse_column_list(str(listing), "features") == ("Right-Thalamus", "Left-Hippocampus")
    data = read_table(path, parts, FeatureSpec.parse(str(listing), "EstimatedTotalIntraCranialVol"))
    assert data.regions == ("Right-Thalamus", "Left-Hippocampus", "EstimatedTotalIntraCranialVol")


def test_declaration_errors_name_the_columns(tmp_path):
    path, parts, _, _ = _asegstats2table(tmp_path)
    with pytest.raises(InputError, match=r"features \['Left-Nowhere'\] match no column"):
        read_table(path, parts, FeatureSpec(features=("Left-Nowhere",)))
    with pytest.raises(InputError, match="'age' is the age column and cannot be a feature"):
        read_table(path, parts, FeatureSpec(include=("age",)))
    with pytest.raises(InputError, match="must be numeric.*'site'"):
        read_table(path, parts, FeatureSpec(include=("site",)))
    generic = pd.DataFrame({"id": ["a", "b", "c"], "age": [20, 30, 40], "x1": [1, 2, 3]})
    generic.to_csv(tmp_path / "generic.csv", index=False)
    with pytest.raises(InputError, match=r"no feature columns.*\['x1'\].*--features"):
        read_table(tmp_path / "generic.csv")
    assert read_table(tmp_path / "generic.csv", features=FeatureSpec(("x1",))).regions == ("x1",)


def test_metadata_and_id_columns_errors(tmp_path):
    path, parts, table, participants = _asegstats2table(tmp_path)
    with pytest.raises(InputError, match="age column 'years' not found"):
        read_table(path, parts, columns=TableColumns(age="years"))
    with pytest.raises(InputError, match="site_column 'scanner' not in columns"):
        read_table(path, parts, columns=TableColumns(site="scanner"))
    participants.iloc[1:].to_csv(tmp_path / "short.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"every subject needs a row.*sub-0001|0001"):
        read_table(path, tmp_path / "short.tsv")
    table.rename(columns={"Measure:volume": "scan"}).to_csv(tmp_path / "noid.tsv", sep="\t")
    with pytest.raises(InputError, match="needs a subject id column"):
        read_table(tmp_path / "noid.tsv", parts)
    bad = table.copy()
    bad.loc[3, "Left-Thalamus"] = np.nan
    bad.to_csv(tmp_path / "nan.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"Left-Thalamus must be a finite number.*0004"):
        read_table(tmp_path / "nan.tsv", parts)


def test_aseg_and_aparc_tables_join_on_subject(tmp_path):
    path, parts, table, _ = _asegstats2table(tmp_path)
    ids = table["Measure:volume"]
    aparc = pd.DataFrame({"lh.aparc.thickness": ids, "lh_insula_thickness": np.linspace(2, 3, 30),
                          "lh_MeanThickness_thickness": 2.5,
                          "eTIV": table["EstimatedTotalIntraCranialVol"]})  # fmt: skip
    aparc.iloc[::-1].to_csv(tmp_path / "lh.tsv", sep="\t", index=False)  # any row order
    data = read_table([path, tmp_path / "lh.tsv"], parts)
    assert data.regions[-1] == "lh_insula_thickness" and len(data.regions) == 7
    np.testing.assert_allclose(data.volumes[0, :, -1], np.linspace(2, 3, 30))
    assert data.excluded["lh_MeanThickness_thickness"] == "whole-brain measure"
    aparc["BrainSegVol"] = table["BrainSegVol"]  # the same measure in both tables: kept once
    aparc.to_csv(tmp_path / "lh2.tsv", sep="\t", index=False)
    assert read_table([path, tmp_path / "lh2.tsv"], parts).regions == data.regions
    aparc["BrainSegVol"] += 1.0
    aparc.to_csv(tmp_path / "lh3.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="column 'BrainSegVol' is in"):
        read_table([path, tmp_path / "lh3.tsv"], parts)


def test_member_tables_take_features_by_name_and_icv_from_a_column(tmp_path):
    table, participants = freesurfer_example_table(n_subjects=12, n_regions=4, seed=3)
    table = table.rename(columns={"Measure:volume": "participant_id"})
    (tmp_path / "t").mkdir()
    table.to_csv(tmp_path / "t" / "baseline.tsv", sep="\t", index=False)
    participants.to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    data = read_member_tables(tmp_path / "t", tmp_path / "participants.tsv")
    assert data.members == ("baseline",) and len(data.regions) == 4  # one table is valid
    assert data.icv_source == "column EstimatedTotalIntraCranialVol"
    assert "BrainSegVol-to-eTIV" in data.excluded
    assert sorted(data.metadata.columns) == ["sex", "site"]


def test_space_separated_freesurfer_53_table(tmp_path):
    table, participants = freesurfer_example_table(n_subjects=10, n_regions=6, seed=4)
    old = table.rename(columns={"Left-Thalamus": "Left-Thalamus-Proper",
                                "Right-Thalamus": "Right-Thalamus-Proper"})  # fmt: skip
    old.to_csv(tmp_path / "aseg53.txt", sep=" ", index=False)  # asegstats2table --delimiter space
    participants.to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    data = read_table(tmp_path / "aseg53.txt", tmp_path / "participants.tsv")
    assert "Left-Thalamus-Proper" in data.regions and len(data.regions) == 6
    np.testing.assert_allclose(data.volumes[0, :, data.regions.index("Left-Thalamus-Proper")],
                               table["Left-Thalamus"])  # fmt: skip
