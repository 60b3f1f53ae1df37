"""Check that an output location can be written, before any work starts.

A directory that does not exist yet is checked at its nearest existing ancestor (where it would be
created); the check writes and removes one probe file there, which is the only test that also
holds for root and for read-only or virtual file systems (``/proc``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.errors import InputError


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists():
        if current.parent == current:
            break
        current = current.parent
    return current


def _subject(name: str | None, path: Path) -> str:
    return f"{name} {str(path)!r}" if name else repr(str(path))


def _probe(directory: Path, name: str | None, target: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".harness-write-probe.", dir=directory)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(
            f"{_subject(name, target)} is not writable: cannot create files in {directory} "
            f"({reason})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_writable_dir(
    path: str | os.PathLike, name: str | None = "--out", *, target: str | os.PathLike | None = None
) -> Path:
    """Raise :class:`InputError` unless ``path`` is, or can be created as, a writable directory.

    Parameters
    ----------
    path : path-like
        The output directory (it need not exist).
    name : str or None
        The parameter named in the message (None: the caller names it).
    target : path-like, optional
        The path the user gave, when ``path`` is its parent (named in the message).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`; nothing is created.
    """
    path = Path(path).expanduser()
    anchor = _nearest_existing(path.absolute())
    if not anchor.is_dir():
        raise InputError(f"{_subject(name, path)} must be a directory, but {anchor} is a file")
    _probe(anchor, name, Path(target) if target is not None else path)
    return path


def check_writable_file(path: str | os.PathLike, name: str | None = "--output") -> Path:
    """Raise :class:`InputError` unless the file ``path`` can be created or replaced."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"{_subject(name, path)} is a directory; give a file name")
    check_writable_dir(path.absolute().parent, name, target=path)
    return path
