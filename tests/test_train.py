"""Trainer: a step changes the weights, seeds decide everything, resume is bitwise exact,
divergence is recorded, and the ``harness train`` CLI."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from harness.data.io import load_pair
from harness.errors import InputError
from harness.perturb.seeds import SeedPlan
from harness.runs.audit import audit
from harness.train import NonFiniteLossError, TrainConfig, ViewTrainer, train_run
from harness.train.config import Engine


def _config(**kw):
    base = dict(views=("axial",), preset="tiny", epochs=1, batch_size=16, lr=0.01)
    return TrainConfig(**(base | kw))


def _state(run_dir, view="axial"):
    return torch.load(run_dir / "checkpoints" / f"{view}.pt", weights_only=True)


def _assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _any_difference(a, b):
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_training_step_changes_weights(tiny_cohort, tmp_path):
    image, label, _ = load_pair(
        tiny_cohort / "sub-0001/anat/sub-0001_T1w.nii.gz",
        tiny_cohort / "sub-0001/anat/sub-0001_dseg.nii.gz",
    )
    trainer = ViewTrainer(_config(), "axial", [image], [label], tmp_path / "c.pt", progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    row = trainer.train_epoch()
    after = trainer.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.endswith("conv0.weight") for k in changed)
    assert any(k.endswith("running_mean") for k in changed)
    assert np.isfinite(row["loss"]) and row["steps"] >= 1
    assert (tmp_path / "c.pt").exists() and trainer.epoch == 1


def test_same_seed_identical_different_seeds_differ(tiny_cohort, tmp_path):
    kw = dict(train_subjects=2, predict=["sub-0003"], progress=False)
    a = train_run(tiny_cohort, tmp_path / "a", _config(), **kw)
    b = train_run(tiny_cohort, tmp_path / "b", _config(), **kw)
    _assert_states_equal(_state(a)["model"], _state(b)["model"])
    seg = "predictions/sub-0003_seg.nii.gz"
    assert np.array_equal(nib.load(str(a / seg)).get_fdata(), nib.load(str(b / seg)).get_fdata())
    for vary in ("init", "data"):
        other = _config(seeds=SeedPlan.derive(1, 0, vary))
        c = train_run(tiny_cohort, tmp_path / vary, other, **kw)
        assert _any_difference(_state(a)["model"], _state(c)["model"]), vary


def test_killed_run_resumes_bitwise_identical(tiny_cohort, tmp_path):
    # op-level up-down rounding (the cheapest perturbed mode) and a learning-rate step after each
    # epoch: every piece of state (engine streams, generators, optimizer, scheduler) must be
    # restored exactly
    config = _config(epochs=2, step_size=1, gamma=0.5, mode="ud", engine="op")
    kw = dict(train_subjects=1, predict=["sub-0004"], progress=False)
    full = train_run(tiny_cohort, tmp_path / "full", config, **kw)

    class Crash(RuntimeError):
        pass

    def crash_after_first(view, epoch, row):
        if epoch == 1:
            raise Crash

    with pytest.raises(Crash):
        train_run(tiny_cohort, tmp_path / "resumed", config, on_epoch_end=crash_after_first, **kw)
    killed = json.loads((tmp_path / "resumed" / "manifest.json").read_text())
    assert killed["status"] == "failed" and killed["error"].startswith("Crash")
    assert _state(tmp_path / "resumed")["epoch"] == 1
    resumed = train_run(tiny_cohort, tmp_path / "resumed", config, **kw)
    s_full, s_res = _state(full), _state(resumed)
    _assert_states_equal(s_full["model"], s_res["model"])
    for p_full, p_res in zip(
        s_full["optimizer"]["state"].values(), s_res["optimizer"]["state"].values(), strict=True
    ):
        _assert_states_equal(p_full, p_res)
    assert s_res["scheduler"] == s_full["scheduler"]
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(s_res["history"]) == drop(s_full["history"])
    manifest = json.loads((resumed / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["attempts"] == 2
    assert [r["epoch"] for r in manifest["history"]] == [1, 2]


def test_finished_run_is_not_recomputed_and_config_is_checked(tiny_cohort, tmp_path):
    kw = dict(train_subjects=2, predict=["sub-0003"], progress=False)
    out = train_run(tiny_cohort, tmp_path / "r", _config(), **kw)
    stamp = (out / "checkpoints" / "axial.pt").stat().st_mtime_ns
    train_run(tiny_cohort, out, _config(), **kw)
    assert (out / "checkpoints" / "axial.pt").stat().st_mtime_ns == stamp
    assert json.loads((out / "manifest.json").read_text())["attempts"] == 1
    with pytest.raises(InputError, match="different configuration"):
        train_run(tiny_cohort, out, _config(lr=0.02), **kw)
    with pytest.raises(InputError, match="held-out"):
        train_run(tiny_cohort, tmp_path / "x", _config(), train_subjects=4, progress=False)


def test_non_finite_loss_is_recorded(tiny_cohort, tmp_path):
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        train_run(tiny_cohort, tmp_path / "nan", _config(lr=1e10), train_subjects=2, progress=False)
    manifest = json.loads((tmp_path / "nan" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "non-finite" in manifest["error"]


def test_config_validation():
    with pytest.raises(InputError, match="kernel"):
        TrainConfig(mode="ud", engine="kernel")
    with pytest.raises(InputError, match="working precision"):
        TrainConfig(mode="sr", engine="kernel", precision=12)
    with pytest.raises(InputError, match="epochs"):
        TrainConfig(epochs=0)
    assert TrainConfig(mode="ieee", engine="op").engine is Engine.NONE
    assert TrainConfig(mode="SR ", engine="kernel").to_dict()["mode"] == "sr"
    with pytest.raises(InputError, match=r"engine must be one of \['none', 'op', 'kernel'\]"):
        TrainConfig(engine="gpu")
    config = _config(mode="rr", precision=12)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_cli_train_happy_and_error(run_cli, tiny_cohort, tmp_path):
    code, out, err = run_cli(
        "train", "--cohort", tiny_cohort, "--out", tmp_path / "cli", "--preset", "tiny",
        "--epochs", "1", "--views", "axial,sagittal", "--train-subjects", "3", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert "1 predictions" in out
    seg = nib.load(str(tmp_path / "cli/predictions/sub-0004_seg.nii.gz"))
    truth = nib.load(str(tiny_cohort / "sub-0004/anat/sub-0004_dseg.nii.gz"))
    assert seg.shape == truth.shape and np.allclose(seg.affine, truth.affine)
    assert (tmp_path / "cli/checkpoints/sagittal.pt").exists()
    history = (tmp_path / "cli/history.tsv").read_text().splitlines()
    assert history[0].split("\t")[:3] == ["view", "epoch", "loss"] and len(history) == 3
    assert [str(f) for f in audit(tmp_path / "cli")] == []  # every file declared
    code, out, err = run_cli(
        "train", "--cohort", tiny_cohort, "--out", tmp_path / "bad", "--preset", "full",
        "--epochs", "1", "--quiet",
    )  # fmt: skip
    assert code == 2 and "divisible by 2**depth = 16" in err


def test_kernel_engine_step_is_seeded(tiny_cohort, tmp_path):
    """Kernel-level sr: instrumented layers, one step on two slices; same epoch seed => same
    weights, and the step differs from IEEE (kept tiny: the C kernels are slow)."""
    from harness.kernels import instrumented_layers

    image, label, _ = load_pair(
        tiny_cohort / "sub-0001/anat/sub-0001_T1w.nii.gz",
        tiny_cohort / "sub-0001/anat/sub-0001_dseg.nii.gz",
    )

    def one_step(mode, engine, name):
        config = _config(mode=mode, engine=engine, augment=False)
        trainer = ViewTrainer(config, "axial", [image], [label], tmp_path / name, progress=False)
        batch = torch.utils.data.default_collate([trainer.dataset[i] for i in (5, 9)])
        trainer._step(batch, trainer._perturbation(1))
        return trainer.model

    a, b = one_step("sr", "kernel", "a.pt"), one_step("sr", "kernel", "b.pt")
    ieee = one_step("ieee", "none", "c.pt")
    # depth 2: input block + 4 dense blocks (1 encoder, bottleneck, 2 decoders) + classifier
    assert len(instrumented_layers(a)) == (3 + 4 * 3 + 1) + (4 + 4 * 3)
    _assert_states_equal(a.state_dict(), b.state_dict())
    assert _any_difference(a.state_dict(), ieee.state_dict())


def test_predict_labels_probabilities_and_ids(tiny_cohort):
    from harness.data.labels import LUT_FULL
    from harness.data.slices import VIEWS
    from harness.models import FastSurferCNN, fastsurfer_config
    from harness.train import predict_labels

    image, _, _ = load_pair(
        tiny_cohort / "sub-0002/anat/sub-0002_T1w.nii.gz",
        tiny_cohort / "sub-0002/anat/sub-0002_dseg.nii.gz",
    )
    torch.manual_seed(0)
    models = {v: FastSurferCNN(**fastsurfer_config(v, "tiny")) for v in VIEWS}
    two = {v: models[v] for v in ("axial", "coronal")}
    labels, probabilities = predict_labels(two, image, batch_size=5)
    assert probabilities.shape == (79, *image.shape) and labels.shape == image.shape
    torch.testing.assert_close(probabilities.sum(0), torch.ones(image.shape), rtol=0, atol=1e-5)
    # with the sagittal view, merged classes get its probability twice (FastSurfer's expansion)
    labels, scores = predict_labels(models, image, batch_size=5)
    assert (scores.sum(0) >= 1 - 1e-5).all()
    allowed = set(LUT_FULL) | {2000 + p for p in range(1, 36)}  # + split lateral right cortex
    assert set(np.unique(labels).tolist()) <= allowed
