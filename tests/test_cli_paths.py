"""Every command given an unwritable output path: one clear line, exit 2, no traceback."""

import pytest

from harness.cli import COMMANDS

NOPE = "/proc/nope"

#: command -> arguments that are valid except for an unwritable output location
UNWRITABLE = {
    "demo": ["demo", "--out", NOPE],
    "train": ["train", "--cohort", "{cohort}", "--out", NOPE, "--epochs", "1"],
    "ensemble": ["ensemble", "run", "--cohort", "{cohort}", "--out", NOPE],
    "sweep": ["sweep", "--out", NOPE, "--repeats", "1", "--steps", "1"],
    "brainage": ["brainage", "--tables", "{tmp}", "--participants", "{tmp}/p.tsv", "--out", NOPE],
    "data": ["data", "synth", "-n", "2", "--out", NOPE],
    "introspect": ["introspect", "--demo", "digits", "--out", NOPE, "--epochs", "1"],
    "env": ["env", "-o", f"{NOPE}/env.json"],
    "report": ["report", "{tmp}", "-o", f"{NOPE}/x.html"],
    "compare": ["compare", "{tmp}", "{tmp}", "-o", f"{NOPE}/x.txt"],
    "results": ["results", "ingest", "{tmp}", "--db", f"{NOPE}/x.duckdb", "--quiet"],
    "kernels": ["kernels", "validate", "--local", "--out", NOPE],
    "containers": ["containers", "bench", "harness/standard:x", "--out", NOPE],
    "segment": ["segment", "--scan", "{tmp}/p.tsv", "--out", NOPE],
}
#: commands that write no file the user names
NO_OUTPUT = {"check"}


def test_every_command_is_covered():
    assert set(COMMANDS) == set(UNWRITABLE) | NO_OUTPUT


@pytest.mark.parametrize("name", sorted(UNWRITABLE))
def test_unwritable_output_is_a_usage_error(name, run_cli, tmp_path):
    (tmp_path / "p.tsv").write_text("participant_id\tage\n")
    fields = {"cohort": tmp_path, "tmp": tmp_path}
    args = [a.format(**fields) for a in UNWRITABLE[name]]
    code, out, err = run_cli(*args)
    assert code == 2, err
    assert "Traceback" not in err + out
    assert f"'{NOPE}" in err and "is not writable" in err
    assert "cannot create files in /proc" in err


def test_unwritable_parent_that_is_a_file(run_cli, tmp_path):
    (tmp_path / "f").write_text("x")
    code, _, err = run_cli("data", "synth", "-n", "2", "--out", tmp_path / "f" / "cohort")
    assert code == 2 and "must be a directory" in err and "is a file" in err


def test_os_errors_during_work_are_one_line(run_cli, monkeypatch, tmp_path):
    import harness.fingerprint

    def denied():
        raise PermissionError(13, "Permission denied", str(tmp_path / "secret"))

    monkeypatch.setattr(harness.fingerprint, "fingerprint", denied)
    code, _, err = run_cli("env")
    assert code == 2
    assert err.strip() == f"error: cannot access {tmp_path / 'secret'}: Permission denied"


def test_writable_output_is_accepted_and_not_created(tmp_path):
    from harness.runs.writable import check_writable_dir, check_writable_file

    target = tmp_path / "a" / "b"
    assert check_writable_dir(target) == target
    assert not (tmp_path / "a").exists()
    assert check_writable_file(tmp_path / "r.html").name == "r.html"
    assert list(tmp_path.iterdir()) == [], "the probe file is removed"
