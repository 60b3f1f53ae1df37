"""Inputs are checked before work; any failure ends the run ``failed`` with its error; a
failed run is retried by the next call with the same configuration."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from harness.errors import InputError
from harness.runs import RunDir
from harness.train import TrainConfig, train_run

KW = dict(train_subjects=1, predict=["sub-0004"], progress=False)


def _config():
    return TrainConfig(views=("axial",), preset="tiny", epochs=1, batch_size=16, lr=0.01)


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


def test_nan_in_a_prediction_subject_fails_before_training(tiny_cohort, tmp_path):
    cohort = tmp_path / "cohort"
    shutil.copytree(tiny_cohort, cohort)
    t1 = cohort / "sub-0004" / "anat" / "sub-0004_T1w.nii.gz"
    image = nib.load(t1)
    data = np.asarray(image.dataobj, dtype=np.float32)
    data[3, 3, 3] = np.nan
    nib.save(nib.Nifti1Image(data, image.affine), t1)
    out = tmp_path / "run"
    with pytest.raises(InputError, match=r"sub-0004.*(finite|NaN)"):
        train_run(cohort, out, _config(), **KW)
    assert not (out / "checkpoints").exists(), "no training happened"


def test_unwritable_out_fails_before_work(tiny_cohort):
    with pytest.raises(InputError, match="not writable"):
        train_run(tiny_cohort, "/proc/nope", _config(), **KW)


def test_any_failure_is_recorded_and_the_run_is_retried(tiny_cohort, tmp_path, monkeypatch):
    import harness.train.predict as predict

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while predicting")

    monkeypatch.setattr(predict, "predict_labels", broken)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="disk full"):
        train_run(tiny_cohort, out, _config(), **KW)
    failed = _manifest(out)
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: disk full while predicting"
    monkeypatch.undo()
    train_run(tiny_cohort, out, _config(), **KW)  # same config: retried, from the checkpoint
    done = _manifest(out)
    assert done["status"] == "complete" and done["attempts"] == 2 and "error" not in done
    assert (out / "predictions" / "sub-0004_seg.nii.gz").exists()


def test_failure_recorded_keeps_the_original_error(tmp_path):
    run = RunDir(tmp_path / "r", kind="sweep")
    run.start("harness sweep", {})
    with pytest.raises(KeyboardInterrupt), run.failure_recorded():
        raise KeyboardInterrupt
    assert run.manifest()["status"] == "failed" and run.manifest()["error"] == "interrupted"
    assert RunDir(tmp_path / "r").completed_with({}) is None  # not complete: resumed next time
