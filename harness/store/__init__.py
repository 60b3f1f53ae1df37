"""The DuckDB results database over run directories and benchmark files.

Run directories themselves (:class:`RunDir`, atomic writes) live in :mod:`harness.runs` and are
re-exported here. ``ResultsDB`` and ``load_results`` are imported lazily so that writers do not
load duckdb.
"""

from harness.runs.rundir import (
    RunDir,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_table,
    atomic_write_text,
    read_json,
)

__all__ = [
    "ResultsDB",
    "RunDir",
    "load_results",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_table",
    "atomic_write_text",
    "read_json",
]


def __getattr__(name: str):
    if name in ("ResultsDB", "load_results"):
        from harness.store import db

        return getattr(db, name)
    raise AttributeError(f"module 'harness.store' has no attribute {name!r}")
