"""``harness ensemble run``: synthetic cohort -> trained members -> ``ensemble analyze``; finished
members are reused and a killed member resumes."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from harness.ensemble import run_ensemble
from harness.errors import InputError
from harness.runs.audit import audit


def _checkpoint(ens, member):
    return ens / "members" / member / "checkpoints" / "axial.pt"


def _weights(ens, member):
    return torch.load(_checkpoint(ens, member), weights_only=False)["model"]


def test_cli_run_then_analyze(run_cli, tiny_cohort, tmp_path):
    ens = tmp_path / "ens"
    code, out, err = run_cli(
        "ensemble", "run", "--cohort", tiny_cohort, "--out", ens, "--factor", "seed=2",
        "--factor", "mca-sr=2", "--preset", "tiny", "--epochs", "1", "--views", "axial",
        "--train-subjects", "1", "--batch-size", "32", "--save-prob", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    manifest = json.loads((ens / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["config"]["cohort"] == str(tiny_cohort.resolve())
    members = ["baseline", "seed-01", "seed-02", "mca-sr-01", "mca-sr-02"]
    assert manifest["config"]["members"] == members
    held_out = ["sub-0002", "sub-0003", "sub-0004"]
    for member in members:
        m = json.loads((ens / "members" / member / "manifest.json").read_text())
        assert m["status"] == "complete" and m["member"]["name"] == member
        assert m["config"]["predict_subjects"] == held_out
        for sid in held_out:
            assert (ens / "members" / member / "predictions" / f"{sid}_seg.nii.gz").exists()
    record = lambda member: json.loads((ens / "members" / member / "manifest.json").read_text())  # noqa: E731
    base, mca = record("baseline")["config"], record("mca-sr-01")["config"]
    assert mca["seeds"] == base["seeds"] and mca["mode"] == "sr" and mca["engine"] == "op"
    assert record("seed-01")["config"]["seeds"]["init"] != base["seeds"]["init"]
    assert record("mca-sr-01")["config"]["mca_seed"] != record("mca-sr-02")["config"]["mca_seed"]
    w = {m: _weights(ens, m) for m in members}
    for a, b in [("baseline", "seed-01"), ("seed-01", "seed-02"), ("mca-sr-01", "mca-sr-02")]:
        assert any(not torch.equal(w[a][k], w[b][k]) for k in w[a]), (a, b)

    code, out, err = run_cli("ensemble", "analyze", ens)  # the cohort comes from the manifest
    assert code == 0, err
    analysis = ens / "analysis"
    for name in [
        "volumes.tsv", "dice_to_truth.tsv", "min_pairwise_dice.tsv", "majority_vote.tsv",
        "volume_sig_bits.tsv", "prob_sig_bits.tsv", "region_summary.tsv",
        "factor_correlation.tsv", "entropy_seed_sub-0003.nii.gz",
        "entropy_mca-sr_sub-0004.nii.gz", "figures/min_pairwise_dice.png",
    ]:  # fmt: skip
        assert (analysis / name).exists(), name
    minpd = pd.read_csv(analysis / "min_pairwise_dice.tsv", sep="\t")
    assert set(minpd["factor"]) == {"seed", "mca-sr"} and set(minpd["subject"]) == set(held_out)
    finite = minpd["min_dice"].dropna()
    assert len(finite) > 0 and ((finite >= 0) & (finite <= 1)).all()
    vols = pd.read_csv(analysis / "volumes.tsv", sep="\t")
    assert set(vols["member"]) == set(members)
    # every file the ensemble, its members and its analysis wrote is declared, columns included
    assert [str(f) for f in audit(ens)] == []


def test_finished_members_reused_and_killed_member_resumes(tiny_cohort, tmp_path):
    ens = tmp_path / "ens"
    kwargs = dict(
        factors={"seed": 2}, preset="tiny", epochs=2, train_subjects=1, predict=["sub-0004"],
        progress=False,
    )  # fmt: skip

    def crash(member, view, epoch, row):
        if member == "seed-01" and epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ensemble(tiny_cohort, ens, on_epoch_end=crash, **kwargs)
    interrupted = json.loads((ens / "manifest.json").read_text())
    assert interrupted["status"] == "failed" and interrupted["error"] == "interrupted"
    baseline_stamp = _checkpoint(ens, "baseline").stat().st_mtime_ns
    assert not (ens / "members" / "seed-02").exists()

    calls = []
    run_ensemble(tiny_cohort, ens, on_epoch_end=lambda *a: calls.append(a[:3]), **kwargs)
    # the baseline is not retrained; seed-01 resumes at epoch 2; seed-02 trains from scratch
    assert calls == [("seed-01", "axial", 2), ("seed-02", "axial", 1), ("seed-02", "axial", 2)]
    assert _checkpoint(ens, "baseline").stat().st_mtime_ns == baseline_stamp
    seed01 = json.loads((ens / "members" / "seed-01" / "manifest.json").read_text())
    assert seed01["attempts"] == 2 and [r["epoch"] for r in seed01["history"]] == [1, 2]
    manifest = json.loads((ens / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["attempts"] == 2
    # a finished ensemble is returned as is
    stamp = _checkpoint(ens, "seed-02").stat().st_mtime_ns
    run_ensemble(tiny_cohort, ens, **kwargs)
    assert _checkpoint(ens, "seed-02").stat().st_mtime_ns == stamp
    with pytest.raises(InputError, match="different configuration"):
        run_ensemble(tiny_cohort, ens, **(kwargs | {"epochs": 3}))


def test_cli_run_errors(run_cli, tiny_cohort, tmp_path):
    code, _, err = run_cli(
        "ensemble", "run", "--cohort", tiny_cohort, "--out", tmp_path / "e", "--factor", "seed=1",
        "--preset", "tiny", "--quiet",
    )  # fmt: skip
    assert code == 2 and "at least 2 members" in err
    code, _, err = run_cli(
        "ensemble", "run", "--cohort", tiny_cohort, "--out", tmp_path / "e", "--factor", "seed",
        "--quiet",
    )  # fmt: skip
    assert code == 2 and "NAME=SIZE" in err
    code, _, err = run_cli(
        "ensemble", "run", "--cohort", tiny_cohort, "--out", tmp_path / "e", "--factor",
        "kernel-ud=2", "--quiet",
    )  # fmt: skip
    assert code == 2 and "factor" in err
    assert not np.any([p.name == "members" for p in tmp_path.glob("e/*")])


def test_parallel_members_then_final_run_records_the_ensemble(run_cli, tiny_cohort, tmp_path):
    """Workers train disjoint members with --member; the final call trains nothing new."""
    ens = tmp_path / "ens"
    args = ("ensemble", "run", "--cohort", tiny_cohort, "--out", ens, "--factor", "seed=2",
            "--preset", "small", "--epochs", "2", "--train-subjects", "1", "--batch-size", "32",
            "--schedule", "cosine", "--quiet")  # fmt: skip
    code, out, err = run_cli(*args, "--member", "seed-02", "--member", "baseline")
    assert code == 0, err
    assert "run again without --member" in out and not (ens / "manifest.json").exists()
    assert sorted(p.name for p in (ens / "members").iterdir()) == ["baseline", "seed-02"]
    trained = (ens / "members" / "seed-02" / "manifest.json").stat().st_mtime_ns
    history = pd.read_csv(ens / "members" / "baseline" / "history.tsv", sep="\t")
    assert history["lr"].tolist() == pytest.approx([0.01, 0.005])  # cosine over 2 epochs
    code, out, err = run_cli(*args)
    assert code == 0, err
    manifest = json.loads((ens / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["config"]["schedule"] == "cosine"
    assert manifest["finished_members"] == ["baseline", "seed-01", "seed-02"]
    assert (ens / "members" / "seed-02" / "manifest.json").stat().st_mtime_ns == trained
    code, _, err = run_cli(*args, "--member", "seed-09")
    assert code == 2 and "member must be one of the plan's members" in err
