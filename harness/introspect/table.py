"""The spectra table (:data:`harness.runs.catalogue.SPECTRA`): the probe's tidy table, appended
per epoch with atomic rewrites.

Columns as declared there: ``run, epoch, step, layer, group, quantity, index, value,
group_size``. Each :meth:`SpectraTable.append` rewrites the file through
:func:`harness.runs.atomic_write_table`, so a crash leaves the previous complete file; a resumed
run calls :meth:`SpectraTable.truncate` to drop rows of epochs it will redo.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import InputError
from harness.introspect.probe import COLUMNS
from harness.runs import atomic_write_table


def read_spectra(path: str | os.PathLike):
    """Read a spectra table and check its columns."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"spectra table not found: {path}")
    frame = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path} lacks spectra columns {missing}")
    return frame


class SpectraTable:
    """The spectra file of one run directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def read(self):
        import pandas as pd

        if not self.path.exists():
            return pd.DataFrame({c: [] for c in COLUMNS})
        return read_spectra(self.path)

    def append(self, frame) -> int:
        """Add rows (one epoch's) and rewrite the file atomically; returns the total row count."""
        import pandas as pd

        old = self.read()
        frames = [f for f in (old, frame[COLUMNS]) if len(f)]
        merged = pd.concat(frames, ignore_index=True) if frames else frame[COLUMNS]
        atomic_write_table(self.path, merged)
        return len(merged)

    def truncate(self, before_epoch: int) -> None:
        """Keep only rows of epochs ``< before_epoch`` (resume after a crash mid-epoch)."""
        if not self.path.exists():
            return
        frame = self.read()
        kept = frame[frame["epoch"] < before_epoch]
        if len(kept) != len(frame):
            atomic_write_table(self.path, kept.reset_index(drop=True))
