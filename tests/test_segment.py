"""harness segment: IEEE and perturbed inference on a tiny imported cohort and on one scan,
outputs in the input's space, BIDS derivatives, and bad inputs."""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import requires_cuda
from test_data_import import GRID, VOXEL, _sample_truth, make_bids

from harness.models import FastSurferCNN, fastsurfer_config
from harness.models.checkpoints import save_v1_checkpoint
from harness.runs import catalogue
from harness.runs.checkpoints import save_checkpoint
from harness.runs.layout import prediction_path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny networks: axial and coronal as FastSurfer v1 files, sagittal as a harness one."""
    root = tmp_path_factory.mktemp("ckpt")
    paths = {}
    for i, view in enumerate(("axial", "coronal", "sagittal")):
        torch.manual_seed(i)
        model = FastSurferCNN(**fastsurfer_config(view, "tiny"))
        if view == "sagittal":
            paths[view] = save_checkpoint(root / "sagittal.pt", {"model": model.state_dict()})
        else:
            paths[view] = save_v1_checkpoint(root / f"{view}.pkl", model)
    return paths


def _ckpt_args(checkpoints, views=("axial", "coronal", "sagittal")):
    return [a for v in views for a in (f"--checkpoint-{v}", checkpoints[v])]


def test_segment_rr_on_a_bids_cohort(tiny_cohort, tmp_path, run_cli, checkpoints):
    bids = make_bids(tiny_cohort, tmp_path / "bids", subjects=("sub-0001",))
    cohort = tmp_path / "cohort"
    code, _, err = run_cli("data", "import", bids, "--out", cohort, "--size", GRID,
                           "--voxel-size", VOXEL, "--quiet")  # fmt: skip
    assert code == 0, err
    out = tmp_path / "seg"
    code, stdout, err = run_cli("segment", "--cohort", cohort, "--out", out, "--mode", "rr",
                                "--samples", 3, "--precision", 5, "--quiet",
                                *_ckpt_args(checkpoints, ("axial", "sagittal")))  # fmt: skip
    assert code == 0, err
    assert "segmented 1 subject(s), views axial,sagittal, mode rr x 3" in stdout
    members = ["baseline", "rr-01", "rr-02", "rr-03"]
    segs = np.stack([np.asarray(nib.load(prediction_path(out, m, "sub-0001")).dataobj)
                     for m in members])  # fmt: skip
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    # entropy: 0 exactly where the perturbed samples agree, positive elsewhere, both present
    entropy = np.asarray(nib.load(catalogue.ENTROPY_MAP.path(
        out / "analysis", factor="rr", subject="sub-0001")).dataobj)  # fmt: skip
    agree = (segs[1:] == segs[1]).all(axis=0)
    assert agree.any() and (~agree).any()
    assert (entropy[agree] == 0).all() and (entropy[~agree] > 0).all()
    # the cohort has labels: Dice to truth and the stability tables
    for artifact in (catalogue.DICE_TO_TRUTH, catalogue.MIN_PAIRWISE_DICE,
                     catalogue.VOLUME_SIG_BITS, catalogue.STABILITY_SUMMARY):  # fmt: skip
        assert artifact.path(out / "analysis").exists(), artifact.name
    # outputs in the input's space: shape and affine of the BIDS T1w, values by the inverse map
    source = nib.load(str(bids / "sub-0001" / "anat" / "sub-0001_T1w.nii.gz"))
    conformed = nib.load(str(prediction_path(out, "baseline", "sub-0001")))
    for desc in ("ieee", "majority"):
        native = nib.load(str(catalogue.NATIVE_SEG_NIFTI.path(out, subject="sub-0001", desc=desc)))
        assert native.shape == source.shape
        np.testing.assert_allclose(native.affine, source.affine, atol=1e-5)
    native = np.asarray(nib.load(str(catalogue.NATIVE_SEG_NIFTI.path(
        out, subject="sub-0001", desc="ieee"))).dataobj)  # fmt: skip
    expected = _sample_truth(np.asarray(conformed.dataobj), conformed.affine, source.shape,
                             source.affine)  # fmt: skip
    np.testing.assert_array_equal(native, expected)
    assert catalogue.NATIVE_ENTROPY_NIFTI.path(out, subject="sub-0001").exists()
    volumes = pd.read_csv(catalogue.SEGMENT_VOLUMES.path(out, subject="sub-0001"), sep="\t")
    baseline_counts = {
        int(v): int(n) for v, n in zip(*np.unique(segs[0], return_counts=True), strict=True)
    }
    for _, row in volumes.iterrows():
        assert row["voxels"] == baseline_counts.get(int(row["label"]), 0)
    assert {"volume_sd", "sig_digits", "sig_bits"} <= set(volumes.columns)
    np.testing.assert_allclose(volumes["volume_mm3"], volumes["voxels"] * VOXEL**3)
    # BIDS derivatives
    derivative = catalogue.BIDS_DSEG.path(out, subject="sub-0001", desc="majority")
    assert derivative.exists()
    description = json.loads(catalogue.BIDS_DESCRIPTION.path(out).read_text())
    assert description["DatasetType"] == "derivative"
    subjects = pd.read_csv(catalogue.SEGMENT_SUBJECTS.path(out), sep="\t")
    assert subjects["samples"].tolist() == [3] and subjects["changed_voxels"][0] > 0


def test_segment_a_single_scan_without_labels(tiny_cohort, tmp_path, run_cli, checkpoints):
    t1 = nib.load(str(catalogue.T1.path(tiny_cohort, subject="sub-0002")))
    scan = tmp_path / "bert.mgz"
    nib.save(nib.MGHImage(np.asarray(t1.dataobj), t1.affine), str(scan))
    release = tmp_path / "release" / "Axial_Weights_FastSurferCNN" / "ckpts"  # v1's tree
    release.mkdir(parents=True)
    shutil.copyfile(checkpoints["axial"], release / "Epoch_30_training_state.pkl")
    out = tmp_path / "seg"
    code, stdout, err = run_cli("segment", "--scan", scan, "--out", out, "--mode", "ud",
                                "--samples", 2, "--format", "mgz", "--size", GRID, "--voxel-size",
                                VOXEL, "--quiet", "--checkpoints", tmp_path / "release")  # fmt: skip
    assert code == 0, err
    assert "views axial, mode ud x 2" in stdout
    assert json.loads((out / "manifest.json").read_text())["checkpoint_layouts"] == {"axial": "v1"}
    analysis = out / "analysis"
    assert catalogue.MIN_PAIRWISE_DICE.path(analysis).exists()
    assert not catalogue.DICE_TO_TRUTH.path(analysis).exists()  # no truth: no table against it
    assert not catalogue.MAJORITY_VOTE.path(analysis).exists()
    summary = pd.read_csv(catalogue.STABILITY_SUMMARY.path(analysis), sep="\t")
    assert summary["dice_to_truth"].isna().all()
    assert summary.set_index("kind").loc["all", "min_dice"] > 0
    native = nib.load(str(catalogue.NATIVE_SEG_MGZ.path(out, subject="sub-bert", desc="ieee")))
    assert native.shape == t1.shape and np.allclose(native.affine, t1.affine, atol=1e-5)
    assert not catalogue.BIDS_DESCRIPTION.path(out).exists()
    # the results database reads the run: the segment run, its analysis and its imported cohort
    code, stdout, err = run_cli("results", "ingest", out, "--db", tmp_path / "r.duckdb", "--quiet")
    assert code == 0 and "runs: 3 new" in stdout, stdout + err


def _malicious(path):
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {path}.ran",))

    path.write_bytes(pickle.dumps({"model_state_dict": Payload()}, protocol=2))
    return path


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "checkpoints must name at least one view"),
        (["--mode", "ieee", "--samples", "3", "--axial"], "--samples needs a perturbation --mode"),
        (["--mode", "rr", "--samples", "0", "--axial"], "--samples must be at least 1"),
        (["--scan", "{tmp}/x.nii.gz", "--axial"], "exactly one input"),
        (["--malicious"], "refusing to load checkpoint"),
        (["--size", "26", "--axial", "--no-cohort", "--scan", "{scan}"], "must be divisible by"),
    ],
)
def test_bad_segment_inputs_exit_2(tiny_cohort, tmp_path, run_cli, checkpoints, extra, message):
    t1 = nib.load(str(catalogue.T1.path(tiny_cohort, subject="sub-0001")))
    scan = tmp_path / "scan.nii.gz"
    nib.save(t1, str(scan))
    args = [] if "--no-cohort" in extra else ["--cohort", tiny_cohort]
    for item in extra:
        if item == "--axial":
            args += ["--checkpoint-axial", checkpoints["axial"]]
        elif item == "--malicious":
            args += ["--checkpoint-axial", _malicious(tmp_path / "evil.pkl")]
        elif item != "--no-cohort":
            args.append(item.format(tmp=tmp_path, scan=scan))
    code, _, err = run_cli("segment", "--out", tmp_path / "out", "--quiet", *args)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "evil.pkl.ran").exists()


def test_streaming_inference_equals_predict_labels(tiny_cohort, checkpoints):
    from harness.models.checkpoints import load_model_checkpoint
    from harness.segment.inference import predict_labels_streaming
    from harness.train.predict import predict_labels

    image = np.asarray(nib.load(str(catalogue.T1.path(tiny_cohort, subject="sub-0003"))).dataobj)
    models = {v: load_model_checkpoint(p)[0] for v, p in checkpoints.items()}
    for views in (("axial",), ("axial", "coronal", "sagittal")):
        subset = {v: models[v] for v in views}
        expected, _ = predict_labels(subset, image, batch_size=5)
        assert len(np.unique(expected)) > 3  # a prediction with several labels
        np.testing.assert_array_equal(
            predict_labels_streaming(subset, image, batch_size=5), expected
        )


@requires_cuda
def test_segment_on_cuda_matches_cpu_mostly(tiny_cohort, tmp_path, run_cli, checkpoints):
    runs = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        code, _, err = run_cli("segment", "--cohort", tiny_cohort, "--out", out, "--mode", "rr",
                               "--samples", 2, "--device", device, "--quiet",
                               *_ckpt_args(checkpoints))  # fmt: skip
        assert code == 0, err
        runs[device] = np.asarray(nib.load(prediction_path(out, "baseline", "sub-0001")).dataobj)
        assert catalogue.MIN_PAIRWISE_DICE.path(out / "analysis").exists()
    assert (runs["cpu"] == runs["cuda"]).mean() > 0.99  # IEEE on two devices: near-identical
