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
    assert len(results) == 2 * 2 * 5 + 2 * 2  # and the mean/median baselines, unaugmented
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
    assert set(results["augmentation"]) == {"none", "ensemble"}
    assert len(results) == 2 * 3 + 2 * 2  # and the mean/median baselines, unaugmented


def _freesurfer_files(tmp_path, n_subjects=60, n_test=20):
    from harness.brainage.example import write_freesurfer_example

    return write_freesurfer_example(tmp_path / "fs", n_subjects=n_subjects, n_test=n_test)


def test_brainage_cli_one_table_with_a_test_table(run_cli, tmp_path):
    fs = _freesurfer_files(tmp_path)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        "brainage", "--table", fs / "aseg_train.tsv", "--participants", fs / "participants.tsv",
        "--test", fs / "aseg_test.tsv", "--test-participants", fs / "participants.tsv",
        "--out", out, "--regressors", "ridge,svr", "--param", "svr.C=100", "--normalize-icv",
    )  # fmt: skip
    assert code == 0, err
    assert "not used as features" in stdout and "age column: age" in stdout
    assert "ratio: BrainSegVol-to-eTIV" in stdout
    assert "ICV normalisation: etiv (column EstimatedTotalIntraCranialVol)" in stdout
    assert "held-out test table: 40 training, 20 test subjects" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["config"]["icv_normalization"] == "etiv"
    assert manifest["config"]["icv_source"] == "etiv (column EstimatedTotalIntraCranialVol)"
    assert manifest["config"]["regressor_params"] == {"svr": {"C": 100}}
    assert "age" not in manifest["data"]["regions"] and len(manifest["data"]["regions"]) == 24
    assert manifest["data"]["excluded_columns"]["age"] == "age column"
    assert manifest["evaluation"]["n_test"] == 20
    evaluation = pd.read_csv(out / "evaluation.tsv", sep="\t")
    assert set(evaluation["regressor"]) == {"ridge", "svr", "mean", "median"}
    assert set(evaluation["n_subjects"]) == {20}
    for baseline in ("mean", "median"):
        assert baseline in stdout
    predictions = pd.read_csv(out / "predictions.tsv", sep="\t", dtype={"subject": str})
    assert sorted(set(predictions["subject"])) == [f"{i:04d}" for i in range(41, 61)]
    groups = pd.read_csv(out / "evaluation_by_group.tsv", sep="\t")
    ridge = groups[(groups["regressor"] == "ridge") & (groups["group_by"] == "site")]
    assert sorted(ridge["group"]) == ["site1", "site2"] and ridge["n_subjects"].sum() == 20
    assert "test MAE by group" in stdout and "site=site1" in stdout
    assert [str(f) for f in audit(out)] == []


def test_brainage_cli_auto_icv_says_it_used_the_sum(run_cli, tmp_path):
    fs = _freesurfer_files(tmp_path, 30, 0)
    table = pd.read_csv(fs / "aseg_train.tsv", sep="\t").drop(
        columns=["EstimatedTotalIntraCranialVol"]
    )
    table.to_csv(fs / "no_etiv.tsv", sep="\t", index=False)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        "brainage", "--table", fs / "no_etiv.tsv", "--participants", fs / "participants.tsv",
        "--out", out, "--regressors", "ridge", "--splits", "3", "--normalize-icv", "--split",
        "0.3", "--stratify-site", "--tune",
    )  # fmt: skip
    assert code == 0, err
    tuning = pd.read_csv(out / "tuning.tsv", sep="\t")
    assert list(tuning["regressor"]) == ["ridge"] and json.loads(tuning["params"][0])["alpha"] > 0
    assert [str(f) for f in audit(out)] == []
    assert "ICV normalisation: sum (" in stdout and "auto: the input has no eTIV" in stdout
    assert "one stratified split, 0.3 of 30 subjects held out" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["icv_normalization"] == "sum"
    assert "auto" in manifest["config"]["icv_source"]
    code, _, err = run_cli(
        "brainage", "--table", fs / "no_etiv.tsv", "--participants", fs / "participants.tsv",
        "--out", tmp_path / "o2", "--normalize-icv", "--icv-source", "etiv",
    )  # fmt: skip
    assert code == 2 and "needs aseg.stats" in err and "--icv-column" in err


def test_brainage_cli_bad_table_input_exits_2(run_cli, tmp_path):
    fs = _freesurfer_files(tmp_path, 30, 10)
    base = ["brainage", "--table", fs / "aseg_train.tsv", "--participants",
            fs / "participants.tsv", "--out", tmp_path / "o"]  # fmt: skip
    cases = [
        (["--include-columns", "age"], "cannot be a feature"),
        (["--features", "Left-Nowhere"], "match no column"),
        (["--param", "svr.gamma_typo=1", "--regressors", "svr"], "has no parameter"),
        (["--param", "ridge.alpha=1", "--regressors", "svr"], "not among the regressors"),
        (["--test", fs / "aseg_test.tsv", "--split", "0.2"], "not both"),
        (["--test", fs / "aseg_train.tsv"], "in both the training and the test table"),
        (["--age-column", "years"], "age column 'years' not found"),
        (["--split", "2"], "split must be a fraction"),
        (["--icv-source", "sum"], "applies only with --normalize-icv"),
    ]
    for extra, message in cases:
        code, _, err = run_cli(*base, *extra)
        assert code == 2, (extra, err)
        assert message in err and "Traceback" not in err, (extra, err)


def test_brainage_cli_members_with_a_test_table(run_cli, tmp_path):
    data = synthetic_data(n_subjects=40, n_regions=4, n_members=2, seed=6)
    tables = write_member_tables(data, tmp_path / "t")
    parts = pd.read_csv(tables / "participants.tsv", sep="\t")
    held_out = pd.read_csv(tables / "baseline.tsv", sep="\t").iloc[30:]
    for name in ("baseline", "seed-01", "seed-02"):  # train on the first 30 subjects only
        frame = pd.read_csv(tables / f"{name}.tsv", sep="\t")
        frame.iloc[:30].to_csv(tables / f"{name}.tsv", sep="\t", index=False)
    parts.iloc[:30].to_csv(tables / "participants.tsv", sep="\t", index=False)
    held_out.to_csv(tmp_path / "test.tsv", sep="\t", index=False)
    parts.iloc[30:].to_csv(tmp_path / "test_participants.tsv", sep="\t", index=False)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        "brainage", "--tables", tables, "--participants", tables / "participants.tsv",
        "--test", tmp_path / "test.tsv", "--test-participants", tmp_path / "test_participants.tsv",
        "--out", out, "--regressors", "ridge", "--max-combinations", "1",
    )  # fmt: skip
    assert code == 0, err
    predictions = pd.read_csv(out / "predictions.tsv", sep="\t")
    arms = predictions.groupby(["regressor", "augmentation", "k"])["subject"].apply(set)
    assert len(set(map(frozenset, arms))) == 1  # every arm on the same 10 test subjects
    assert len(arms.iloc[0]) == 10 and {"none", "ensemble", "gaussian"} <= set(
        predictions["augmentation"]
    )
    assert "held-out test table: 30 training, 10 test subjects" in stdout
