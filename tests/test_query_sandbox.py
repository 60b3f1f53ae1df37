"""``harness results query`` is read-only and cannot reach files outside the database."""

import pytest

from harness.runs import RunDir


@pytest.fixture
def db(run_cli, tmp_path):
    run = RunDir(tmp_path / "runs" / "one", kind="sweep")
    run.start("harness sweep", {"a": 1})
    run.finish()
    path = tmp_path / "r.duckdb"
    code, _, err = run_cli("results", "ingest", tmp_path / "runs", "--db", path, "--quiet")
    assert code == 0, err
    return path


def test_query_reads_the_database(run_cli, db):
    code, out, _ = run_cli("results", "query", "SELECT count(*) AS n FROM runs", "--db", db)
    assert code == 0 and "1" in out


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT * FROM runs) TO '{target}' (HEADER)",
        "SELECT * FROM read_csv_auto('{secret}')",
        "SELECT * FROM '{secret}'",
        "ATTACH '{target}.db' AS other",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ],
)
def test_queries_touching_files_are_refused(run_cli, db, tmp_path, sql):
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    target = tmp_path / "stolen.csv"
    code, out, err = run_cli(
        "results", "query", sql.format(target=target, secret=secret), "--db", db
    )
    assert code == 2, out
    assert err.startswith("error: query failed") and "Traceback" not in err
    assert not target.exists() and not (tmp_path / "stolen.csv.db").exists()


def test_writes_are_refused(run_cli, db):
    code, _, err = run_cli("results", "query", "DELETE FROM runs", "--db", db)
    assert code == 2 and "read-only" in err.lower()
