"""An exclusive lock per run directory, so that two writers never share one directory.

The lock is the file :data:`harness.runs.catalogue.RUN_LOCK` inside the run directory, created
with ``O_CREAT | O_EXCL`` (atomic on local filesystems and on NFS v3 and later) and holding the
holder's ``pid``, ``host``, ``started`` time and a random ``token``. While it holds the lock, the
holder refreshes the file's modification time every ``heartbeat_s`` seconds (a daemon thread).

Stale-lock rule: a lock is stale, and may be broken, when

- its holder runs on this host and its process no longer exists (or is a zombie), or
- its heartbeat is older than ``stale_after_s`` (a holder on another host that died, or a pid
  reused by an unrelated process; its heartbeat thread is gone).

A stale lock is broken under a second exclusive file
(:data:`~harness.runs.catalogue.RUN_LOCK_BREAK`) and re-checked there, so two processes that
both find it stale never both take it over. A guard file older than ``stale_after_s`` is itself
stale (its writer died between two system calls).

A process that finds a live lock waits up to ``wait_s`` for it to be released or to become
stale, then raises :class:`RunLockedError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.runs.catalogue import RUN_LOCK, RUN_LOCK_BREAK

#: seconds between two refreshes of a held lock's modification time
HEARTBEAT_S = 10.0
#: a lock whose heartbeat is older than this is stale (12 missed heartbeats)
STALE_AFTER_S = 120.0
#: how long :meth:`RunLock.acquire` waits for a live holder by default (past the stale time)
WAIT_S = STALE_AFTER_S + 2 * HEARTBEAT_S
_POLL_S = 0.2


class RunLockedError(HarnessError):
    """The run directory is being written by another live process."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as written in the lock file."""

    pid: int
    host: str
    started: float
    token: str

    def describe(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.started))
        return f"pid {self.pid} on {self.host} since {stamp} UTC"


def lock_path(run_dir: str | os.PathLike) -> Path:
    """Where the lock of ``run_dir`` lives."""
    return RUN_LOCK.path(run_dir)


def read_holder(path: str | os.PathLike) -> LockHolder | None:
    """The holder recorded in lock file ``path``; None if there is none, or it is unreadable
    (being written this instant: callers treat that as held and retry)."""
    try:
        record = json.loads(Path(path).read_text())
        return LockHolder(int(record["pid"]), str(record["host"]), float(record["started"]),
                          str(record["token"]))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: existence is all we know
    return stat.rpartition(")")[2].split()[0] != "Z"


def is_stale(holder: LockHolder | None, age_s: float, stale_after_s: float,
             host: str | None = None) -> bool:  # fmt: skip
    """The stale-lock rule (module docstring) for a lock whose heartbeat is ``age_s`` old."""
    if age_s > stale_after_s:
        return True
    if holder is None:
        return False
    return holder.host == (host or socket.gethostname()) and not process_alive(holder.pid)


class RunLock:
    """Exclusive lock of one run directory (a context manager; see the module docstring).

    Parameters
    ----------
    run_dir : path-like
        The run directory; created if missing.
    wait_s : float
        How long :meth:`acquire` waits for a live holder before raising.
    stale_after_s, heartbeat_s : float
        The stale-lock rule and the holder's refresh period.
    """

    def __init__(self, run_dir: str | os.PathLike, *, wait_s: float = WAIT_S,
                 stale_after_s: float = STALE_AFTER_S, heartbeat_s: float = HEARTBEAT_S):  # fmt: skip
        self.run_dir = Path(run_dir)
        self.path = lock_path(run_dir)
        self.wait_s, self.stale_after_s, self.heartbeat_s = wait_s, stale_after_s, heartbeat_s
        self.holder: LockHolder | None = None
        self.broke: LockHolder | None = None  # the stale holder this lock replaced, if any
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- taking and giving back --------------------------------------------------------------
    def acquire(self) -> RunLock:
        """Take the lock, waiting up to ``wait_s`` for a live holder.

        Raises
        ------
        RunLockedError
            If another live process still holds it after ``wait_s``.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_s
        while not self._try_create():
            self._break_if_stale()
            if time.monotonic() > deadline:
                holder = read_holder(self.path)
                who = holder.describe() if holder else "another process"
                raise RunLockedError(
                    f"{self.run_dir} is being written by {who} (lock {self.path}); two jobs "
                    f"never write one run directory: wait for it, or delete the lock if that "
                    f"process is gone (a lock is stale once its holder's process is gone on "
                    f"this host or its heartbeat is {self.stale_after_s:.0f} s old)"
                )
            time.sleep(_POLL_S)
        self._beat = threading.Thread(target=self._heartbeat, name="run-lock", daemon=True)
        self._beat.start()
        return self

    def release(self) -> None:
        """Give the lock back (only if the file is still ours)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.holder is not None:
            current = read_holder(self.path)
            if current is not None and current.token == self.holder.token:
                self.path.unlink(missing_ok=True)
        self.holder = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- internals -----------------------------------------------------------------------------
    def _try_create(self) -> bool:
        holder = LockHolder(os.getpid(), socket.gethostname(), time.time(), secrets.token_hex(8))
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump(holder.__dict__, fh)
            fh.flush()
            os.fsync(fh.fileno())
        self.holder = holder
        return True

    def _age(self, path: Path) -> float | None:
        try:
            return time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None

    def _break_if_stale(self) -> None:
        age = self._age(self.path)
        if age is None or not is_stale(read_holder(self.path), age, self.stale_after_s):
            return
        guard = RUN_LOCK_BREAK.path(self.run_dir)
        guard_age = self._age(guard)
        if guard_age is not None and guard_age > self.stale_after_s:
            guard.unlink(missing_ok=True)
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return  # someone else is breaking it
        os.close(fd)
        try:  # re-check under the guard: the lock may have been replaced meanwhile
            holder, age = read_holder(self.path), self._age(self.path)
            if age is not None and is_stale(holder, age, self.stale_after_s):
                self.path.unlink(missing_ok=True)
                self.broke = holder
        finally:
            guard.unlink(missing_ok=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with contextlib.suppress(OSError):
                os.utime(self.path)
