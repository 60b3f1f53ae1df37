"""The default results database lives in the user cache, not in the (tracked) results folder."""

from pathlib import Path

from harness.runs import RunDir
from harness.store.db import default_db_path


def test_default_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("HARNESS_DB", raising=False)
    monkeypatch.delenv("HARNESS_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_db_path() == tmp_path / ".cache" / "harness" / "results.duckdb"
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "c"))
    assert default_db_path() == tmp_path / "c" / "results.duckdb"
    monkeypatch.setenv("HARNESS_DB", str(tmp_path / "x.duckdb"))
    assert default_db_path() == tmp_path / "x.duckdb"


def test_ingest_without_db_writes_nothing_into_the_root(run_cli, monkeypatch, tmp_path):
    monkeypatch.delenv("HARNESS_DB", raising=False)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "results"
    run = RunDir(root / "one", kind="sweep")
    run.start("harness sweep", {})
    run.finish()
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    code, out, err = run_cli("results", "ingest", root, "--quiet")
    assert code == 0, err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert (tmp_path / "cache" / "results.duckdb").is_file()
    code, out, _ = run_cli("results", "query", "SELECT count(*) AS n FROM runs")
    assert code == 0 and "1" in out


def test_database_files_are_gitignored():
    ignore = (Path(__file__).parents[1] / ".gitignore").read_text().split()
    assert "*.duckdb" in ignore
