"""Self-describing run directories with atomic writes (and, later, the results database)."""

from harness.store.rundir import (
    RunDir,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_table,
    atomic_write_text,
    read_json,
)

__all__ = [
    "RunDir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_table",
    "atomic_write_text",
    "read_json",
]
