import tempfile
from pathlib import Path

from harness.runs.audit import audit

CACHE = Path(tempfile.gettempdir()) / "harness-test-cache"


def test_synth_then_check(run_cli, tmp_path):
    out = tmp_path / "cohort"
    code, stdout, err = run_cli(
        "data",
        "synth",
        "--subjects",
        2,
        "--out",
        out,
        "--grid",
        24,
        "--seed",
        1,
        "--cache-dir",
        CACHE,
    )
    assert code == 0, err
    assert (out / "sub-0002" / "anat" / "sub-0002_dseg.nii.gz").exists()
    assert (out / "manifest.json").exists()
    assert [str(f) for f in audit(out)] == []  # every file declared in the catalogue
    code, stdout, err = run_cli("data", "check", out)
    assert code == 0, err
    assert "sub-0001" in stdout and "24x24x24" in stdout and "cohort OK" in stdout


def test_synth_error(run_cli, tmp_path):
    code, _, err = run_cli(
        "data", "synth", "--subjects", 0, "--out", tmp_path / "x", "--cache-dir", CACHE
    )
    assert code == 2 and "error:" in err and "n_subjects" in err and "Traceback" not in err


def test_check_error(run_cli, tmp_path):
    code, _, err = run_cli("data", "check", tmp_path / "missing")
    assert code == 2 and "error:" in err and "Traceback" not in err
