from itertools import combinations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from harness.ensemble.analyze import analyze_ensemble
from harness.errors import InputError
from harness.metrics import dice_per_label

LABELS = pd.DataFrame(
    {
        "label": [0, 17, 1035, 4],
        "name": ["Unknown", "Left-Hippocampus", "ctx-lh-insula", "Left-Lateral-Ventricle"],
        "kind": ["background", "subcortical", "cortical", "csf"],
    }
)


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.int32), np.diag([2.0, 2.0, 2.0, 1.0])), str(path))


def _make(tmp_path, subjects=("sub-0001", "sub-0002")):
    rng = np.random.default_rng(0)
    cohort, ens = tmp_path / "cohort", tmp_path / "ens"
    cohort.mkdir()
    LABELS.to_csv(cohort / "labels.tsv", sep="\t", index=False)
    members = {
        "baseline": 0.02,
        "seed-01": 0.05,
        "seed-02": 0.05,
        "seed-03": 0.05,
        "mca-sr-01": 0.03,
        "mca-sr-02": 0.03,
    }
    preds = {}
    for subject in subjects:
        truth = rng.choice([0, 17, 1035, 4], size=(6, 7, 5), p=[0.4, 0.2, 0.3, 0.1])
        _write(cohort / subject / "anat" / f"{subject}_dseg.nii.gz", truth)
        for member, flip in members.items():
            noise = rng.choice([0, 17, 1035, 4], size=truth.shape)
            pred = np.where(rng.random(truth.shape) < flip, noise, truth)
            preds[member, subject] = pred
            _write(ens / "members" / member / "predictions" / f"{subject}_seg.nii.gz", pred)
    return cohort, ens, preds


def test_analyze_writes_every_table(tmp_path):
    cohort, ens, preds = _make(tmp_path)
    out = analyze_ensemble(ens, cohort)
    for name in [
        "volumes.tsv",
        "dice_to_truth.tsv",
        "min_pairwise_dice.tsv",
        "majority_vote.tsv",
        "volume_sig_bits.tsv",
        "region_summary.tsv",
        "factor_correlation.tsv",
        "entropy_seed_sub-0001.nii.gz",
        "figures/min_pairwise_dice.png",
        "manifest.json",
    ]:
        assert (out / name).exists(), name
    minpd = pd.read_csv(out / "min_pairwise_dice.tsv", sep="\t")
    row = minpd[(minpd.factor == "seed") & (minpd.subject == "sub-0001") & (minpd.label == 17)]
    brute = min(
        dice_per_label(preds[a, "sub-0001"], preds[b, "sub-0001"], [17])[0]
        for a, b in combinations(["seed-01", "seed-02", "seed-03"], 2)
    )
    assert row["min_dice"].item() == pytest.approx(brute)
    assert set(minpd["factor"]) == {"seed", "mca-sr"}
    assert 0 not in set(minpd["label"])  # background excluded
    vols = pd.read_csv(out / "volumes.tsv", sep="\t")
    v = vols[(vols.member == "baseline") & (vols.subject == "sub-0002") & (vols.label == 4)]
    assert v["volume_mm3"].item() == pytest.approx(8.0 * np.sum(preds["baseline", "sub-0002"] == 4))
    ent = nib.load(str(out / "entropy_seed_sub-0001.nii.gz")).get_fdata()
    stack = np.stack([preds[m, "sub-0001"] for m in ("seed-01", "seed-02", "seed-03")])
    assert np.all((ent > 0) == ~np.all(stack == stack[0], axis=0))
    corr = pd.read_csv(out / "factor_correlation.tsv", sep="\t")
    assert {"mca-sr", "seed"} == set(corr[["factor_a", "factor_b"]].iloc[0])


def test_analyze_needs_baseline(tmp_path):
    cohort, ens, _ = _make(tmp_path, subjects=("sub-0001",))
    (ens / "members" / "baseline").rename(ens / "members" / "old")
    with pytest.raises(InputError, match="member name must be|no 'baseline'"):
        analyze_ensemble(ens, cohort)


def test_analyze_rejects_non_ensemble(tmp_path):
    with pytest.raises(InputError, match="not an ensemble directory"):
        analyze_ensemble(tmp_path, tmp_path)


def test_analyze_cli(run_cli, tmp_path):
    cohort, ens, _ = _make(tmp_path, subjects=("sub-0001",))
    code, out, err = run_cli("ensemble", "analyze", ens, "--cohort", cohort, "--no-entropy-maps")
    assert code == 0, err
    assert (ens / "analysis" / "region_summary.tsv").exists()
    assert not list((ens / "analysis").glob("entropy_*"))
    code, _, err = run_cli("ensemble", "analyze", tmp_path / "nowhere")
    assert code == 2 and "error:" in err and "Traceback" not in err


def test_matched_sizes_intervals_and_counts_beside_stability(tmp_path):
    subjects = ("sub-0001", "sub-0002", "sub-0003")
    cohort, ens, preds = _make(tmp_path, subjects)
    out = analyze_ensemble(ens, cohort, entropy_maps=False)
    mpd = pd.read_csv(out / "min_pairwise_dice.tsv", sep="\t")
    assert set(mpd["matched_size"]) == {2}  # mca-sr has 2 members, seed 3
    assert dict(mpd.groupby("factor")["n_members"].first()) == {"mca-sr": 2, "seed": 3}
    # subsets of 2 members are the pairs: the matched minimum is the mean pairwise Dice
    seed = [f"seed-0{i}" for i in (1, 2, 3)]
    labels = [17, 1035, 4]
    for subject in subjects:
        pairs = [dice_per_label(preds[a, subject], preds[b, subject], labels)
                 for a, b in combinations(seed, 2)]  # fmt: skip
        got = mpd[(mpd["factor"] == "seed") & (mpd["subject"] == subject)].set_index("label")
        np.testing.assert_allclose(got.loc[labels, "matched_min_dice"], np.mean(pairs, axis=0))
        np.testing.assert_allclose(got.loc[labels, "min_dice"], np.min(pairs, axis=0))
    summary = pd.read_csv(out / "stability_summary.tsv", sep="\t")
    row = summary[(summary["factor"] == "seed") & (summary["kind"] == "all")].iloc[0]
    assert row["n_members"] == 3 and row["n_subjects"] == 3 and row["n_regions"] == 3
    for name in ("min_dice", "matched_min_dice", "dice_to_truth"):
        assert row[f"{name}_low"] <= row[name] <= row[f"{name}_high"]
    region = mpd[mpd["factor"] == "seed"].groupby("label")["min_dice"].mean()
    assert row["min_dice"] == pytest.approx(region.median())
    corr = pd.read_csv(out / "factor_correlation.tsv", sep="\t")
    assert {"partial_r", "n_members_a", "n_members_b"} <= set(corr.columns)
    manifest = __import__("json").loads((out / "manifest.json").read_text())
    assert manifest["matched_size"] == 2 and manifest["n_members"] == {"mca-sr": 2, "seed": 3}
