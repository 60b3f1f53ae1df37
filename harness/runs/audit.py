"""Checking run directories against the catalogue: every file declared, every table's columns as
declared."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError
from harness.runs.catalogue import FileFormat, find_artifact
from harness.runs.kinds import RunKind
from harness.runs.rundir import MANIFEST, read_manifest


@dataclass(frozen=True)
class Finding:
    """One file that does not match the catalogue."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def _owner(path: Path, runs: dict[Path, RunKind | None], root: Path) -> Path | None:
    """The nearest directory above ``path`` (within ``root``) that is a run directory."""
    for folder in path.parents:
        if folder in runs:
            return folder
        if folder == root:
            return None
    return None


def _header(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return fh.readline().rstrip("\n").split("\t")


def audit(root: str | os.PathLike, columns: bool = True) -> list[Finding]:
    """Every file under ``root`` that no declaration of the catalogue covers, or (with
    ``columns``) a TSV table whose header differs from the declared columns; empty when the tree
    is as declared.

    Each file belongs to the nearest run directory above it (the one holding its
    ``manifest.json``), whose kind says which artifacts it may hold. Hidden files (temporary
    files of atomic writes) are ignored.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise InputError(f"audit root must be a directory, got {root}")
    runs: dict[Path, RunKind | None] = {}
    for manifest in root.rglob(MANIFEST):
        runs[manifest.parent] = RunKind.of_manifest(read_manifest(manifest))
    findings = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        run_dir = _owner(path, runs, root)
        if run_dir is None:
            findings.append(Finding(path, "not inside a run directory"))
            continue
        kind = runs[run_dir]
        if kind is None:
            findings.append(Finding(path, "its run directory records no known kind"))
            continue
        relpath = path.relative_to(run_dir)
        artifact = find_artifact(kind, relpath)
        if artifact is None:
            findings.append(Finding(path, f"not declared for a {kind.value} run"))
        elif columns and artifact.format is FileFormat.TSV and artifact.columns is not None:
            header = _header(path)
            if header != list(artifact.columns):
                findings.append(
                    Finding(path, f"columns {header}, declared {list(artifact.columns)}")
                )
    return findings
