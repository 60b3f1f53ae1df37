"""Run directories now live in :mod:`harness.runs.rundir`; this name keeps old imports working."""

from harness.runs.rundir import (  # noqa: F401
    MANIFEST,
    MANIFEST_SCHEMA,
    RunDir,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_table,
    atomic_write_text,
    os,
    read_json,
    read_manifest,
)
