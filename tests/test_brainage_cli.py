"""``harness brainage`` in-process: one happy path, error paths."""

import json

import pandas as pd

from harness.runs.audit import audit
from helpers.brainage import synthetic_data, write_member_tables


def test_brainage_cli_happy_path(run_cli, tmp_path):
    tables = write_member_tables(
        synthetic_data(n_subjects=20, n_regions=4, n_members=2), tmp_path / "t"
    )
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        "brainage", "--tables", tables, "--participants", tables / "participants.tsv",
        "--out", out, "--regressors", "ridge,rf", "--splits", "2", "--n-estimators", "3",
        "--max-combinations", "2", "--normalize-icv", "--seed", "7",
    )  # fmt: skip
    assert code == 0, err
    assert "lowest MAE" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["kind"] == "brainage"
    assert manifest["config"]["icv_normalization"] == "sum" and manifest["config"]["seed"] == 7
    results = pd.read_csv(out / "results.tsv", sep="\t")
    assert {"regressor", "augmentation", "k", "split", "mae", "rmse", "r", "r2"} <= set(
        results.columns
    )
    assert set(results["augmentation"]) == {"none", "ensemble", "gaussian"}
    assert len(results) == 2 * 2 * 5
    assert [str(f) for f in audit(out)] == []  # every file declared in the catalogue
    for name in ("summary.tsv", "robustness.tsv", "predictions.tsv"):
        assert len(pd.read_csv(out / name, sep="\t")) > 0
    for name in ("mae_vs_k.png", "predicted_vs_true.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"


def test_brainage_cli_missing_age_is_an_error(run_cli, tmp_path):
    tables = write_member_tables(
        synthetic_data(n_subjects=8, n_regions=3, n_members=2), tmp_path / "t"
    )
    parts = pd.read_csv(tables / "participants.tsv", sep="\t").iloc[2:]
    parts.to_csv(tables / "participants.tsv", sep="\t", index=False)
    code, _, err = run_cli(
        "brainage",
        "--tables",
        tables,
        "--participants",
        tables / "participants.tsv",
        "--out",
        tmp_path / "o",
    )
    assert code == 2
    assert "error:" in err and "needs an age" in err and "Traceback" not in err


def test_brainage_cli_needs_exactly_one_source(run_cli, tmp_path):
    code, _, err = run_cli("brainage", "--out", tmp_path / "o")
    assert code == 2 and "exactly one of" in err and "Traceback" not in err
    code, _, err = run_cli("brainage", "--tables", tmp_path, "--out", tmp_path / "o")
    assert code == 2 and "--participants is required" in err


def test_brainage_cli_on_aseg_stats_with_etiv(run_cli, tmp_path):
    data = synthetic_data(n_subjects=8, n_regions=3, n_members=2, seed=4)
    root = tmp_path / "stats"
    for m, member in enumerate(data.members):
        for s, subject in enumerate(data.subjects):
            lines = [
                "# Measure EstimatedTotalIntraCranialVol, eTIV, Estimated TIV, 1500000.0, mm^3"
            ]
            lines.append("# ColHeaders Index SegId NVoxels Volume_mm3 StructName")
            for r, region in enumerate(data.regions):
                volume = data.volumes[m, s, r]
                lines.append(f"{r + 1} {r + 10} {int(volume)} {volume:.4f} {region}")
            path = root / member / subject / "stats" / "aseg.stats"
            path.parent.mkdir(parents=True)
            path.write_text("\n".join(lines) + "\n")
    parts = write_member_tables(data, tmp_path / "t") / "participants.tsv"
    out = tmp_path / "out"
    code, _, err = run_cli(
        "brainage", "--aseg-stats", root, "--participants", parts, "--out", out,
        "--regressors", "ridge", "--splits", "2", "--normalize-icv", "--no-gaussian-control",
    )  # fmt: skip
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["icv_normalization"] == "etiv"
    assert manifest["data"]["members"] == ["baseline", "seed-01", "seed-02"]
    results = pd.read_csv(out / "results.tsv", sep="\t")
    assert set(results["augmentation"]) == {"none", "ensemble"} and len(results) == 2 * 3
