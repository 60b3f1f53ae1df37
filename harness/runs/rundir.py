"""Run directories: ``manifest.json`` plus tables, written atomically.

Every file is written to a temporary name in the same directory, flushed, fsynced and renamed, so a
crash never leaves a half-written file under its final name. A run's manifest has ``status``
``running`` until :meth:`RunDir.finish` sets ``complete`` (or ``failed``): readers trust only
complete runs. Manifests carry ``schema_version``; :func:`read_manifest` refuses one it cannot
read (corrupt, not an object, or a newer schema).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.runs.catalogue import MANIFEST as MANIFEST_FILE
from harness.runs.catalogue import Artifact, artifact_named
from harness.runs.kinds import RunKind

MANIFEST = MANIFEST_FILE.name
#: version of the manifest layout this harness writes and the newest it reads
MANIFEST_SCHEMA = 1


def current_umask() -> int:
    """The process's file-creation mask, read without changing it where the OS allows.

    Linux reports it in ``/proc/self/status``; elsewhere ``os.umask`` is set and restored at once
    (the only portable way to read it).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _apply_umask(fd: int) -> None:
    # mkstemp creates 0600 files; a file written with open() gets 0666 minus the umask
    os.fchmod(fd, 0o666 & ~current_umask())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename).

    The file gets the mode ``open()`` would give it (0666 minus the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        _apply_umask(fd)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path`` (same suffixes) for a writer that needs a file name
    (``torch.save``, ``nibabel.save``); it is renamed onto ``path`` only if the block succeeds.
    The file gets the mode ``open()`` would give it (0666 minus the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            _apply_umask(fh.fileno())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "value"):  # Enum
        return obj.value
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=True)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None


def read_manifest(path: str | os.PathLike) -> dict:
    """Read a run's manifest (``path`` is the run directory or the manifest file).

    A manifest without ``schema_version`` (written by hand) is read as version 1.

    Raises
    ------
    InputError
        If the file is missing, not valid JSON, not a JSON object, or has a ``schema_version``
        that is not an integer between 1 and :data:`MANIFEST_SCHEMA`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    manifest = read_json(path)
    if not isinstance(manifest, dict):
        raise InputError(f"{path} is not a run manifest: expected a JSON object")
    version = manifest.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError(f"{path}: schema_version must be a positive integer, got {version!r}")
    if version > MANIFEST_SCHEMA:
        raise InputError(
            f"{path} has manifest schema_version {version}; this harness reads up to "
            f"{MANIFEST_SCHEMA}: upgrade harness to read it"
        )
    return manifest


def atomic_write_table(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as TSV (``.tsv``) or parquet (``.parquet``) atomically."""
    import io

    path = Path(path)
    if path.suffix == ".tsv":
        buf = io.StringIO()
        frame.to_csv(buf, sep="\t", index=False)
        return atomic_write_text(path, buf.getvalue())
    if path.suffix == ".parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return atomic_write_bytes(path, buf.getvalue())
    raise InputError(f"table path must end in .tsv or .parquet, got {path.name!r}")


class RunDir:
    """A self-describing result directory.

    Parameters
    ----------
    path : path-like
        Directory of the run; created if missing.
    kind : RunKind or str, optional
        What produces it (:class:`harness.runs.RunKind`; a string is parsed); None to re-open a
        run and keep the kind its manifest records.
    """

    def __init__(self, path: str | os.PathLike, kind: RunKind | str | None = None):
        self.path = Path(path)
        self.kind = None if kind is None else RunKind.parse(kind)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def manifest(self) -> dict:
        return read_manifest(self.manifest_path)

    def is_complete(self) -> bool:
        return self.exists() and self.manifest().get("status") == "complete"

    def completed_with(self, config: dict, what: str = "a run") -> dict | None:
        """Resume check before :meth:`start`: the finished manifest when this run is complete with
        ``config`` (nothing to recompute), None when it is new or unfinished with ``config``
        (resume it); :class:`InputError` when it holds a run of another configuration."""
        if not self.exists():
            return None
        previous = self.manifest()
        if previous.get("config") != config:
            raise InputError(
                f"{self.path} already holds {what} with a different configuration; "
                "choose another --out"
            )
        return previous if previous.get("status") == "complete" else None

    def start(self, command: str, config: dict | None = None, **extra: Any) -> dict:
        """Create (or re-open, for resuming) the run and write a ``running`` manifest."""
        from harness.fingerprint import fingerprint

        self.path.mkdir(parents=True, exist_ok=True)
        previous = self.manifest() if self.exists() else {}
        manifest = {
            "schema_version": MANIFEST_SCHEMA,
            "kind": self.kind.value if self.kind else previous.get("kind"),
            "command": command,
            "config": config or {},
            "status": "running",
            "started": previous.get("started", time.time()),
            "attempts": previous.get("attempts", 0) + 1,
            "environment": fingerprint(),
            "timings": previous.get("timings", {}),
        }
        manifest.update(extra)
        atomic_write_json(self.manifest_path, manifest)
        return manifest

    def update(self, **fields: Any) -> dict:
        manifest = self.manifest()
        manifest.update(fields)
        atomic_write_json(self.manifest_path, manifest)
        return manifest

    def finish(self, status: str = "complete", **fields: Any) -> dict:
        manifest = self.manifest()
        manifest.update(fields)
        manifest["status"] = status
        manifest["finished"] = time.time()
        manifest.setdefault("timings", {})["wall_s"] = manifest["finished"] - manifest["started"]
        atomic_write_json(self.manifest_path, manifest)
        return manifest

    @contextlib.contextmanager
    def failure_recorded(self):
        """Record any exception leaving the block in the manifest (``status`` ``failed``,
        ``error``) and re-raise it; a later :meth:`start` with the same config retries the run
        (:meth:`completed_with` resumes every run that is not complete)."""
        try:
            yield self
        except BaseException as exc:
            if self.exists():
                interrupted = isinstance(exc, KeyboardInterrupt)
                message = "interrupted" if interrupted else f"{type(exc).__name__}: {exc}"
                with contextlib.suppress(Exception):  # never mask the original error
                    self.finish("failed", error=message)
            raise

    def file(self, artifact: Artifact | str, **fields: str) -> Path:
        """Where ``artifact`` (a declaration of :mod:`harness.runs.catalogue`, or its name)
        lives here."""
        return artifact_named(artifact).path(self.path, **fields)

    def write_table(self, artifact: Artifact | str, frame, **fields: str) -> Path:
        """Write a declared table artifact atomically."""
        return atomic_write_table(self.file(artifact, **fields), frame)

    def write_json(self, artifact: Artifact | str, obj: Any, **fields: str) -> Path:
        """Write a declared JSON artifact atomically."""
        return atomic_write_json(self.file(artifact, **fields), obj)
