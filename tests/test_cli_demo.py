from harness.experiments import demo as demo_mod


def test_demo_runs_and_resumes(run_cli, tmp_path, monkeypatch):
    calls = []

    def tiny_sweep(ctx):
        calls.append(ctx.out)
        from harness.experiments.mode_sweep import SweepConfig, config_dict, run_mode_sweep

        cfg = SweepConfig(modes=("ieee", "ud"), repeats=2, steps=2, batch_size=2, image_size=8)
        run = ctx.stage_dir("mode-sweep")
        run.start("test", config_dict(cfg))
        run.write_table("sweep.tsv", run_mode_sweep(cfg))
        run.finish()
        return "ok"

    monkeypatch.setattr(demo_mod, "STAGES", [("mode-sweep", tiny_sweep)])
    code, out, err = run_cli("demo", "--out", tmp_path / "d")
    assert code == 0, err
    assert (tmp_path / "d" / "mode-sweep" / "sweep.tsv").exists()
    code, out, _ = run_cli("demo", "--out", tmp_path / "d")
    assert code == 0 and "complete, kept" in out
    assert len(calls) == 1  # the finished stage was not recomputed


def test_demo_bad_device(run_cli, tmp_path):
    code, _, err = run_cli("demo", "--out", tmp_path, "--device", "tpu")
    assert code == 2 and "error:" in err and "Traceback" not in err


def test_demo_end_to_end_tiny(run_cli, tmp_path):
    """The main job, every stage, at the smallest size: the files each stage promises exist, the
    report names them, and a second call recomputes nothing."""
    import json

    import pandas as pd

    out = tmp_path / "demo"
    code, stdout, err = run_cli("demo", "--size", "tiny", "--out", out)
    assert code == 0, err
    expected = [
        "mode-sweep/sweep.tsv",
        "granularity/granularity.tsv",
        "cohort/participants.tsv",
        "ensemble/members/baseline/predictions",
        "ensemble/analysis/min_pairwise_dice.tsv",
        "ensemble/analysis/factor_correlation.tsv",
        "classical/analysis/min_pairwise_dice.tsv",
        "classical/compare/stability_comparison.tsv",
        "kernel-bench/bench-kernels.json",
        "introspect/spectra.parquet",
        "brainage/summary.tsv",
        "report/report.html",
        "report/report.md",
    ]
    for path in expected:
        assert (out / path).exists(), path
    members = sorted(p.name for p in (out / "ensemble/members").iterdir())
    assert members == ["baseline", "mca-ud-01", "mca-ud-02", "seed-01", "seed-02"]
    factors = set(pd.read_csv(out / "ensemble/analysis/min_pairwise_dice.tsv", sep="\t")["factor"])
    assert {"seed", "mca-ud"} <= factors
    bench = json.loads((out / "kernel-bench/bench-kernels.json").read_text())
    assert {b["extra_info"]["mode"] for b in bench["benchmarks"]} >= {"native", "ieee", "sr"}
    report = (out / "report/report.md").read_text()
    classical = pd.read_csv(out / "classical/compare/stability_comparison.tsv", sep="\t")
    assert {("classical", "ud"), ("cnn", "seed"), ("cnn", "mca-ud")} <= set(
        zip(classical["pipeline"], classical["factor"], strict=True)
    )
    for heading in ("Ensemble agreement", "Classical pipeline vs CNN", "Brain age",
                    "Gradient spectra", "Throughput"):
        assert heading in report, heading
    assert str(out / "report" / "report.html") in stdout
    # every file of every stage is declared in the run-file catalogue, columns included
    from harness.runs.audit import audit

    assert [str(f) for f in audit(out)] == []

    code, stdout, _ = run_cli("demo", "--size", "tiny", "--out", out)
    assert code == 0 and "running" not in stdout
    assert stdout.count("complete, kept") == 10
