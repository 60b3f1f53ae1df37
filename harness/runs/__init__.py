"""Run directories and the catalogue of the files they hold (the bottom layer of harness).

Every command writes a self-describing run directory (:class:`RunDir`: ``manifest.json`` with a
:class:`RunKind`, plus files written atomically). Each file a run may hold is declared once in
:mod:`harness.runs.catalogue` (name, format, owning kinds, key columns, columns); producers,
readers and the results database (:mod:`harness.store`) all use those declarations.
"""

from harness.runs import catalogue
from harness.runs.catalogue import ARTIFACTS, Artifact, DbTable, FileFormat, artifact_named
from harness.runs.kinds import RunKind
from harness.runs.layout import BASELINE
from harness.runs.lock import RunLock, RunLockedError
from harness.runs.rundir import (
    MANIFEST,
    MANIFEST_SCHEMA,
    RunDir,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_table,
    atomic_write_text,
    read_json,
    read_manifest,
)

__all__ = [
    "ARTIFACTS",
    "Artifact",
    "BASELINE",
    "DbTable",
    "FileFormat",
    "MANIFEST",
    "MANIFEST_SCHEMA",
    "RunDir",
    "RunKind",
    "RunLock",
    "RunLockedError",
    "artifact_named",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_table",
    "atomic_write_text",
    "catalogue",
    "read_json",
    "read_manifest",
]
