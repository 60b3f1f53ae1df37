"""``harness results ingest|query|list``: the DuckDB results database."""

from __future__ import annotations

from pathlib import Path

import click

from harness.commands.options import OutputFile, enum_choice
from harness.store.tables import TableFormat

FORMATS = enum_choice(TableFormat, exclude=[TableFormat.MD])
DB_HELP = "Database file [default: $HARNESS_DB or ~/.cache/harness/results.duckdb]."


@click.group()
def results() -> None:
    """Results database (DuckDB file, no server) over run directories and benchmark JSON files."""


@results.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path())
@click.option(
    "--db", "db_path", type=OutputFile(), default=None,
    help=DB_HELP,
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--skip-bad", is_flag=True,
    help="Exit 0 even when some run manifests cannot be read (they are named on stderr).",
)  # fmt: skip
def ingest(roots: tuple[str, ...], db_path: str | None, quiet: bool, skip_bad: bool) -> None:
    """Add new and changed runs and benchmark files under ROOTS to the database."""
    from harness.store.db import ResultsDB, default_db_path

    path = Path(db_path) if db_path else default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with ResultsDB(path) as db:
        summary = db.ingest(list(roots), progress=not quiet)
    click.echo(f"{path}: {summary.describe()}")
    for line in summary.check_bad(skip_bad):
        click.echo(line, err=True)


@results.command()
@click.argument("sql")
@click.option("--db", "db_path", default=None, help=DB_HELP)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def query(sql: str, db_path: str, fmt: str) -> None:
    """Run one SQL query (DuckDB dialect, read-only) and print the result.

    Tables: runs, metrics, benchmarks, spectra, sources.
    """
    from harness.store.db import ResultsDB, default_db_path
    from harness.store.tables import render

    with ResultsDB(db_path or default_db_path(), read_only=True) as db:
        frame = db.query(sql)
    click.echo(render(frame, fmt))


@results.command(name="list")
@click.option("--db", "db_path", default=None, help=DB_HELP)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def list_(db_path: str, fmt: str) -> None:
    """List the runs (with status and device) and benchmark files in the database."""
    from harness.store.db import ResultsDB, default_db_path
    from harness.store.tables import render

    with ResultsDB(db_path or default_db_path(), read_only=True) as db:
        runs = db.query(
            "SELECT r.run_id, r.kind, r.status, r.device, r.created, count(m.value) AS metrics "
            "FROM runs r LEFT JOIN metrics m USING (run_id) "
            "GROUP BY ALL ORDER BY r.run_id"
        )
        benches = db.query(
            "SELECT file_name, any_value(device_name) AS device, count(*) AS benchmarks, "
            "min(datetime) AS measured, source FROM benchmarks GROUP BY source, file_name "
            "ORDER BY file_name"
        )
    click.echo(f"runs ({len(runs)}):")
    click.echo(render(runs, fmt) if len(runs) else "(none)")
    click.echo(f"\nbenchmark files ({len(benches)}):")
    click.echo(render(benches, fmt) if len(benches) else "(none)")
