"""Finding result sources on disk: run directories and pytest-benchmark JSON files.

A *run directory* is any directory holding a ``manifest.json`` (see :class:`harness.runs.RunDir`);
a *benchmark file* is any ``.json`` file whose top-level object has a ``benchmarks`` list (the
pytest-benchmark ``--benchmark-json`` format). Hidden files and directories (temporary files of
atomic writes start with a dot) and virtual environments are never looked into.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InputError
from harness.runs import MANIFEST

#: directory names never walked into
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", ".git", ".venv", "venv"})
#: JSON files larger than this are not opened to look for a ``benchmarks`` key
MAX_BENCHMARK_JSON_BYTES = 64 * 2**20


@dataclass
class Sources:
    """What one or more roots hold: run directories and benchmark files (absolute paths)."""

    runs: list[tuple[Path, Path]] = field(default_factory=list)  # (run dir, root it was found in)
    benchmarks: list[Path] = field(default_factory=list)

    def extend(self, other: Sources) -> None:
        seen_runs = {r for r, _ in self.runs}
        self.runs += [(r, root) for r, root in other.runs if r not in seen_runs]
        seen = set(self.benchmarks)
        self.benchmarks += [b for b in other.benchmarks if b not in seen]


def read_benchmark_json(path: Path) -> dict | None:
    """Return the parsed file if it is a pytest-benchmark JSON file, else None."""
    try:
        if path.stat().st_size > MAX_BENCHMARK_JSON_BYTES:
            return None
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("benchmarks"), list):
        return data
    return None


def _hidden(name: str) -> bool:
    return name.startswith(".")


def discover(root: str | os.PathLike) -> Sources:
    """Find every run directory and benchmark file under ``root`` (a directory or one JSON file).

    Raises
    ------
    InputError
        If ``root`` does not exist, or is a file that is not a pytest-benchmark JSON file.
    """
    root = Path(root).resolve()
    found = Sources()
    if not root.exists():
        raise InputError(f"results path does not exist: {root}")
    if root.is_file():
        if read_benchmark_json(root) is None:
            raise InputError(
                f"{root} is not a pytest-benchmark JSON file (no top-level 'benchmarks' list)"
            )
        found.benchmarks.append(root)
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d) and d not in SKIP_DIRS)
        here = Path(dirpath)
        if MANIFEST in filenames:
            found.runs.append((here, root))
        for name in sorted(filenames):
            if name.endswith(".json") and name != MANIFEST and not _hidden(name):
                if read_benchmark_json(here / name) is not None:
                    found.benchmarks.append(here / name)
    return found


def discover_all(roots) -> Sources:
    """:func:`discover` over several roots, without duplicates."""
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    roots = list(roots)
    if not roots:
        raise InputError("at least one results root is required")
    found = Sources()
    for root in roots:
        found.extend(discover(root))
    return found
