import pytest

from harness.errors import InputError
from harness.experiments.mode_sweep import SweepConfig, run_mode_sweep
from harness.runs.audit import audit


def test_mode_sweep_table():
    cfg = SweepConfig(modes=("ieee", "sr", "ud"), repeats=3, steps=3, batch_size=4, image_size=8)
    frame = run_mode_sweep(cfg)
    assert list(frame["mode"]) == ["ieee", "sr", "ud"]
    rows = frame.set_index("mode")
    assert rows.loc["ieee", "identical_runs"]
    assert rows.loc["ieee", "weights_sig_bits_min"] == 24  # identical runs: every fp32 bit
    for mode in ("sr", "ud"):
        assert not rows.loc[mode, "identical_runs"]
        assert 5 < rows.loc[mode, "weights_sig_bits_median"] < 24


def test_mode_sweep_rejects_too_few_repeats():
    with pytest.raises(InputError, match="repeats"):
        run_mode_sweep(SweepConfig(repeats=1))


def test_sweep_cli(run_cli, tmp_path):
    code, out, err = run_cli(
        "sweep", "--modes", "ieee,ud", "--repeats", "2", "--steps", "2", "-o", tmp_path / "s"
    )
    assert code == 0, err
    assert "ud" in out and (tmp_path / "s" / "sweep.tsv").exists()
    assert [str(f) for f in audit(tmp_path / "s")] == []  # every file declared
    code, _, err = run_cli("sweep", "--modes", "ieee,fuzzy")
    assert code == 2 and "error:" in err and "Traceback" not in err
