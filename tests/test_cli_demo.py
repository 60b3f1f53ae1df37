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
