"""harness data import: FreeSurfer SUBJECTS_DIR and BIDS datasets made from the synthetic
generator, checked voxel for voxel against the synthetic truth after the conform round trip."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from harness.data.cohort import load_cohort
from harness.data.conform import robust_rescale
from harness.data.importers import load_source_geometry
from harness.data.labels import clean_freesurfer_labels
from harness.errors import InputError
from harness.runs import catalogue

GRID, VOXEL = 24, 8.0  # the tiny cohort's grid (conftest.tiny_cohort)


def _truth(cohort: Path, subject: str):
    t1 = nib.load(str(catalogue.T1.path(cohort, subject=subject)))
    seg = nib.load(str(catalogue.DSEG.path(cohort, subject=subject)))
    return np.asarray(t1.dataobj), np.asarray(seg.dataobj).astype(np.int32), t1.affine


def make_freesurfer(tiny_cohort: Path, root: Path, subjects=("sub-0001", "sub-0002")) -> Path:
    """A SUBJECTS_DIR: <name>/mri/orig.mgz and aparc.DKTatlas+aseg.mgz (MGZ, LIA, as FreeSurfer)."""
    for i, subject in enumerate(subjects):
        t1, seg, affine = _truth(tiny_cohort, subject)
        mri = root / f"subj{i + 1}" / "mri"
        mri.mkdir(parents=True)
        nib.save(nib.MGHImage(t1, affine), str(mri / "orig.mgz"))
        nib.save(nib.MGHImage(seg, affine), str(mri / "aparc.DKTatlas+aseg.mgz"))
    (root / "fsaverage" / "mri").mkdir(parents=True)  # a template folder, not a subject
    return root


def make_bids(tiny_cohort: Path, root: Path, subjects=("sub-0001", "sub-0002")) -> Path:
    """A BIDS dataset: T1w NIfTI in RAS orientation (reoriented from LIA), FreeSurfer derivatives
    in MGZ, participants.tsv with the synthetic ages."""
    participants = pd.read_csv(catalogue.PARTICIPANTS.path(tiny_cohort), sep="\t")
    for subject in subjects:
        t1, seg, affine = _truth(tiny_cohort, subject)
        ras = nib.as_closest_canonical(nib.Nifti1Image(t1.astype(np.float32), affine))
        anat = root / subject / "anat"
        anat.mkdir(parents=True)
        nib.save(ras, str(anat / f"{subject}_T1w.nii.gz"))
        fs = root / "derivatives" / "freesurfer" / subject / "mri"
        fs.mkdir(parents=True)
        seg_ras = nib.as_closest_canonical(nib.Nifti1Image(seg, affine))
        nib.save(nib.MGHImage(np.asarray(seg_ras.dataobj).astype(np.int32), seg_ras.affine),
                 str(fs / "aparc.DKTatlas+aseg.mgz"))  # fmt: skip
    participants[participants["participant_id"].isin(subjects)].to_csv(
        root / "participants.tsv", sep="\t", index=False
    )
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.8"}))
    return root


def _sample_truth(truth: np.ndarray, truth_affine, out_shape, out_affine) -> np.ndarray:
    """Truth at each output voxel by integer index arithmetic (voxel grids that coincide up to
    axis permutation, flips and a whole-voxel shift); 0 outside the truth's grid."""
    index = np.indices(out_shape).reshape(3, -1)
    world = out_affine @ np.vstack([index, np.ones(index.shape[1])])
    source = np.linalg.inv(truth_affine) @ world
    rounded = np.rint(source[:3]).astype(int)
    assert np.abs(source[:3] - rounded).max() < 1e-4  # the grids do coincide
    inside = np.all((rounded >= 0) & (rounded < np.array(truth.shape)[:, None]), axis=0)
    out = np.zeros(index.shape[1], dtype=truth.dtype)
    out[inside] = truth[tuple(rounded[:, inside])]
    return out.reshape(out_shape)


def test_freesurfer_import_round_trip(tiny_cohort, tmp_path, run_cli):
    source = make_freesurfer(tiny_cohort, tmp_path / "subjects")
    out = tmp_path / "cohort"
    code, stdout, _ = run_cli("data", "import", source, "--out", out, "--size", GRID,
                              "--voxel-size", VOXEL, "--quiet")  # fmt: skip
    assert code == 0, stdout
    assert "imported 2 of 2 subjects" in stdout
    cohort = load_cohort(out, require_age=False, check_volumes=True)
    assert cohort.ids == ["sub-subj1", "sub-subj2"] and np.isnan(cohort.ages).all()
    for pid, subject in zip(cohort.ids, ("sub-0001", "sub-0002"), strict=True):
        t1, seg, affine = _truth(tiny_cohort, subject)
        got_t1, got_seg, got_affine = _truth(out, pid)
        np.testing.assert_allclose(got_affine, affine, atol=1e-6)  # orig.mgz is already conformed
        np.testing.assert_array_equal(got_seg, seg)
        np.testing.assert_array_equal(got_t1, t1)  # uint8 on the conformed grid: kept as is
        geometry = load_source_geometry(out, pid)
        assert geometry["shape"] == [GRID] * 3 and geometry["layout"] == "freesurfer"
    report = pd.read_csv(catalogue.IMPORT_REPORT.path(out), sep="\t")
    assert list(report["status"]) == ["imported", "imported"]
    code, stdout, _ = run_cli("data", "check", out, "--no-age")
    assert code == 0 and "2 subjects, no ages" in stdout
    code, _, stderr = run_cli("data", "check", out)
    assert code == 2 and "age of sub-subj1 must be a number, got 'n/a'" in stderr


def test_uncompressed_nifti_and_t1_only(tiny_cohort, tmp_path, run_cli):
    t1, _, affine = _truth(tiny_cohort, "sub-0003")
    anat = tmp_path / "bids" / "sub-03" / "ses-1" / "anat"
    anat.mkdir(parents=True)
    nib.save(nib.Nifti1Image(t1, affine), str(anat / "sub-03_ses-1_T1w.nii"))
    out = tmp_path / "cohort"
    code, stdout, _ = run_cli("data", "import", tmp_path / "bids", "--out", out, "--no-labels",
                              "--size", GRID, "--voxel-size", VOXEL, "--quiet")  # fmt: skip
    assert code == 0 and "imported 1 of 1" in stdout
    cohort = load_cohort(out, require_labels=False, require_age=False)
    assert cohort.ids == ["sub-03"] and cohort.subjects[0].dseg is None
    got_t1, got_affine = _truth_t1(out, "sub-03")
    np.testing.assert_allclose(got_affine, affine, atol=1e-6)
    np.testing.assert_array_equal(got_t1, np.rint(robust_rescale(t1)).astype(np.uint8))
    assert load_source_geometry(out, "sub-03")["bids"] == {"sub": "03", "ses": "1"}


def _truth_t1(cohort: Path, subject: str):
    image = nib.load(str(catalogue.T1.path(cohort, subject=subject)))
    return np.asarray(image.dataobj), image.affine


def test_bids_import_round_trip(tiny_cohort, tmp_path, run_cli):
    source = make_bids(tiny_cohort, tmp_path / "bids")
    out = tmp_path / "cohort"
    code, stdout, _ = run_cli("data", "import", source, "--out", out, "--size", GRID,
                              "--voxel-size", VOXEL, "--quiet")  # fmt: skip
    assert code == 0, stdout
    cohort = load_cohort(out, check_volumes=True)  # ages came from participants.tsv
    truth_ages = pd.read_csv(catalogue.PARTICIPANTS.path(tiny_cohort), sep="\t")["age"][:2]
    np.testing.assert_allclose(cohort.ages, truth_ages)
    for subject in cohort.ids:
        t1, seg, affine = _truth(tiny_cohort, subject)
        got_t1, got_seg, got_affine = _truth(out, subject)
        assert np.allclose(got_affine[:3, :3], affine[:3, :3])  # LIA again, from RAS input
        expected = _sample_truth(seg, affine, got_seg.shape, got_affine)
        np.testing.assert_array_equal(got_seg, expected)
        # float32 RAS input: rescaled and resampled; the grids coincide, so the voxels are the
        # rescaled truth's
        rescaled = np.rint(robust_rescale(t1)).astype(np.uint8)
        np.testing.assert_array_equal(got_t1, _sample_truth(rescaled, affine, t1.shape, got_affine))
        assert load_source_geometry(out, subject)["bids"] == {"sub": subject[4:]}


def test_label_cleaning_rules():
    labels = np.zeros((12, 12, 12), dtype=np.int32)
    labels[:6] = 2  # left WM
    labels[6:] = 41  # right WM
    labels[2:4, 2:4, 2:4] = 80  # non-WM hypointensity -> 77
    labels[5:7, 5, 5] = 251  # corpus callosum -> nearest WM
    labels[0, :4, :4] = 1028  # a DKT parcel
    labels[0, 4, 0] = 1000  # ctx-lh-unknown -> nearest left parcel
    labels[11, 11, 11] = 85  # optic chiasm -> background
    cleaned, remapped = clean_freesurfer_labels(labels)
    assert cleaned[2, 2, 2] == 77 and cleaned[5, 5, 5] == 2 and cleaned[6, 5, 5] == 41
    assert cleaned[0, 4, 0] == 1028 and cleaned[11, 11, 11] == 0
    assert remapped == {80: 8, 85: 1, 251: 2, 1000: 1}
    labels[1, 1, 1] = 999
    with pytest.raises(InputError, match=r"ids no rule maps: \[999\]"):
        clean_freesurfer_labels(labels)


def _break(source: Path, how: str) -> None:
    mri = source / "subj1" / "mri"
    if how == "missing":
        (mri / "orig.mgz").unlink()
    elif how == "shape":
        nib.save(nib.MGHImage(np.ones((GRID, GRID, GRID - 2), np.int32), np.eye(4)),
                 str(mri / "aparc.DKTatlas+aseg.mgz"))  # fmt: skip
    elif how == "affine":
        seg = nib.load(str(mri / "aparc.DKTatlas+aseg.mgz"))
        shifted = seg.affine.copy()
        shifted[:3, 3] += 5
        nib.save(
            nib.MGHImage(np.asarray(seg.dataobj), shifted), str(mri / "aparc.DKTatlas+aseg.mgz")
        )
    elif how == "4d":
        nib.save(nib.MGHImage(np.ones((GRID, GRID, GRID, 2), np.uint8), np.eye(4)),
                 str(mri / "orig.mgz"))  # fmt: skip
    elif how == "empty":
        orig = nib.load(str(mri / "orig.mgz"))
        nib.save(nib.MGHImage(np.zeros((GRID,) * 3, np.int32), orig.affine),
                 str(mri / "aparc.DKTatlas+aseg.mgz"))  # fmt: skip


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing", "subj1: missing T1 subj1/mri/orig.mgz"),
        ("shape", "label map shape must equal image shape"),
        ("affine", "label map affine must equal image affine"),
        ("4d", "must be a 3D volume, got shape (24, 24, 24, 2)"),
        ("empty", "must contain at least one non-background label, got all zeros"),
    ],
)
def test_bad_inputs_exit_2_or_are_skipped(tiny_cohort, tmp_path, run_cli, how, message):
    source = make_freesurfer(tiny_cohort, tmp_path / "subjects")
    _break(source, how)
    args = ("data", "import", source, "--size", GRID, "--voxel-size", VOXEL, "--quiet")
    code, stdout, stderr = run_cli(*args, "--out", tmp_path / "a")
    assert code == 2 and message in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
    code, stdout, _ = run_cli(*args, "--out", tmp_path / "b", "--skip-bad")
    assert code == 0 and "imported 1 of 2 subjects" in stdout and "skipped subj1: " in stdout
    report = pd.read_csv(catalogue.IMPORT_REPORT.path(tmp_path / "b"), sep="\t")
    assert report.set_index("source_id").loc["subj1", "status"] == "skipped"
    assert message in report.set_index("source_id").loc["subj1", "reason"]
    assert load_cohort(tmp_path / "b", require_age=False).ids == ["sub-subj2"]


def test_no_subjects_and_missing_source(tmp_path, run_cli):
    code, _, stderr = run_cli("data", "import", tmp_path / "nope", "--out", tmp_path / "c")
    assert code == 2 and "source must be an existing directory" in stderr
    (tmp_path / "empty").mkdir()
    code, _, stderr = run_cli("data", "import", tmp_path / "empty", "--out", tmp_path / "c")
    assert code == 2 and "source must be a BIDS dataset" in stderr
