"""The results database: an embedded DuckDB file over run directories and benchmark files.

``ResultsDB(path).ingest(roots)`` finds every run directory (``manifest.json``) and pytest-benchmark
JSON file under the roots and loads them into four tables (see :data:`SCHEMA`): ``runs``,
``metrics`` (long form), ``benchmarks`` and ``spectra``; a fifth, ``sources``, remembers each file's
size, mtime and SHA-256 so that a later ingest re-reads only new or changed files. A run whose
manifest status is not ``complete`` is recorded in ``runs`` with its status, but its tables are not
loaded: a crashed or running writer never contributes results.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from harness.errors import InputError, MissingDependencyError
from harness.runs import MANIFEST, Artifact, DbTable, read_manifest
from harness.store.discover import Sources, discover_all, read_benchmark_json
from harness.store.extract import benchmark_records, metric_records, run_artifacts, run_record

DEFAULT_DB_NAME = "results.duckdb"
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS sources (
    path VARCHAR PRIMARY KEY, owner VARCHAR, source_kind VARCHAR,
    mtime_ns BIGINT, size BIGINT, sha256 VARCHAR, ingested_at TIMESTAMP DEFAULT current_timestamp);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, path VARCHAR, kind VARCHAR, command VARCHAR, status VARCHAR,
    device VARCHAR, gpu_name VARCHAR, cpu_model VARCHAR, torch VARCHAR, cuda VARCHAR, host VARCHAR,
    created TIMESTAMP, finished TIMESTAMP, attempts INTEGER,
    config JSON, fingerprint JSON, manifest JSON);
CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR, table_name VARCHAR, metric VARCHAR, labels VARCHAR, key_json JSON,
    value DOUBLE);
CREATE TABLE IF NOT EXISTS benchmarks (
    source VARCHAR, file_name VARCHAR, name VARCHAR, fullname VARCHAR, match_key VARCHAR,
    group_name VARCHAR, param VARCHAR, params JSON, op VARCHAR, case_name VARCHAR, mode VARCHAR,
    implementation VARCHAR, device VARCHAR, device_name VARCHAR, gpu_name VARCHAR,
    cpu_model VARCHAR, torch VARCHAR, cuda VARCHAR, host VARCHAR, git_commit VARCHAR,
    datetime TIMESTAMP, mean_s DOUBLE, median_s DOUBLE, stddev_s DOUBLE, min_s DOUBLE,
    max_s DOUBLE, rounds BIGINT, iterations BIGINT, ops DOUBLE, data DOUBLE[], gflops DOUBLE,
    sig_bits_mean DOUBLE, sig_bits_median DOUBLE, sig_bits_min DOUBLE, ratio_vs_ieee DOUBLE,
    extra JSON, fingerprint JSON, image VARCHAR, image_id VARCHAR, vfc_backends VARCHAR);
CREATE TABLE IF NOT EXISTS spectra (
    run_id VARCHAR, run VARCHAR, epoch BIGINT, step BIGINT, layer VARCHAR, "group" VARCHAR,
    quantity VARCHAR, "index" BIGINT, value DOUBLE, group_size DOUBLE);
"""

#: columns added after a table was first released (table, column, type): added to older files
#: on open, so a database keeps working across harness versions
ADDED_COLUMNS = (
    ("benchmarks", "image", "VARCHAR"),
    ("benchmarks", "image_id", "VARCHAR"),
    ("benchmarks", "vfc_backends", "VARCHAR"),
)

#: units ingested per transaction (a crash loses at most this many; a re-run picks them up)
COMMIT_EVERY = 200
#: tables whose rows belong to one run (deleted and re-inserted when the run changes)
RUN_TABLES = ("metrics", "spectra", "runs")


@dataclass
class IngestSummary:
    """What one :meth:`ResultsDB.ingest` call did."""

    runs_new: list[str] = field(default_factory=list)
    runs_updated: list[str] = field(default_factory=list)
    runs_unchanged: int = 0
    runs_incomplete: list[str] = field(default_factory=list)
    benchmark_files_new: list[str] = field(default_factory=list)
    benchmark_files_updated: list[str] = field(default_factory=list)
    benchmark_files_unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    #: (manifest path, reason) of run manifests that could not be read: corrupt, unknown schema
    bad: list[tuple[str, str]] = field(default_factory=list)
    metric_rows: int = 0
    benchmark_rows: int = 0
    spectra_rows: int = 0

    @property
    def changed(self) -> int:
        return sum(
            len(x)
            for x in (
                self.runs_new,
                self.runs_updated,
                self.benchmark_files_new,
                self.benchmark_files_updated,
                self.removed,
            )
        )

    def describe(self) -> str:
        return (
            f"runs: {len(self.runs_new)} new, {len(self.runs_updated)} updated, "
            f"{self.runs_unchanged} unchanged ({len(self.runs_incomplete)} not complete: "
            f"tables not loaded); benchmark files: {len(self.benchmark_files_new)} new, "
            f"{len(self.benchmark_files_updated)} updated, {self.benchmark_files_unchanged} "
            f"unchanged; {len(self.removed)} removed (gone from disk); rows added: {self.metric_rows} metrics, {self.benchmark_rows} "
            f"benchmarks, {self.spectra_rows} spectra"
            + (f"; {len(self.bad)} unreadable manifests left out" if self.bad else "")
        )

    def check_bad(self, skip_bad: bool = False) -> list[str]:
        """Raise :class:`InputError` naming every unreadable manifest, unless ``skip_bad``;
        then return one warning line per manifest left out."""
        lines = [f"{path}: {reason}" for path, reason in self.bad]
        if lines and not skip_bad:
            raise InputError(
                f"{len(lines)} run manifest(s) cannot be read (fix or remove them, or pass "
                "--skip-bad to leave them out): " + "; ".join(lines)
            )
        return [f"warning: left out unreadable manifest {line}" for line in lines]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _run_files(run_dir: Path, manifest: dict) -> list[tuple[Path, Artifact | None]]:
    """The files of a run that feed the database, with their artifacts (manifest first)."""
    files: list[tuple[Path, Artifact | None]] = [(run_dir / MANIFEST, None)]
    for artifact in run_artifacts(manifest):
        if artifact.fields:  # a family of files is not a table
            continue
        if artifact.path(run_dir).is_file():
            files.append((artifact.path(run_dir), artifact))
    return files


class ResultsDB:
    """An embedded DuckDB database of results.

    Parameters
    ----------
    path : path-like
        Database file (created if missing), or ``":memory:"`` for a throw-away database.
    read_only : bool
        Open an existing file without write access (queries only), sandboxed: DuckDB's external
        access is disabled (no ``COPY ... TO``, ``read_csv``, ``ATTACH`` of other files) and
        configuration is locked (:data:`SANDBOX`).

    Examples
    --------
    >>> db = ResultsDB(default_db_path())                   # doctest: +SKIP
    >>> db.ingest(["results", "runs/"]).describe()          # doctest: +SKIP
    >>> db.query("SELECT name, device_name, mean_s FROM benchmarks")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike = ":memory:", read_only: bool = False):
        try:
            import duckdb
        except ImportError as exc:  # pragma: no cover - duckdb is a dependency
            raise MissingDependencyError("the results database needs the duckdb package") from exc
        self.path = str(path)
        self._pending: dict[str, list[pd.DataFrame]] = {}
        self._assigned: dict[str, str] = {}  # run ids given out in the current ingest
        #: warnings about inputs left out (see :func:`load_results`)
        self.warnings: list[str] = []
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise InputError(
                f"no results database at {self.path}; create it with `harness results ingest`"
            )
        try:
            self.con = duckdb.connect(self.path, read_only=read_only, config=_config(read_only))
        except duckdb.Error as exc:
            raise InputError(f"cannot open results database {self.path}: {exc}") from None
        if not read_only:
            self.con.execute(SCHEMA)
            for table, column, kind in ADDED_COLUMNS:
                self.con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        self._check_schema_version(write=not read_only)

    def _check_schema_version(self, write: bool) -> None:
        """Refuse a database written by another schema version (it is rebuilt from the files)."""
        import duckdb

        try:
            row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except duckdb.Error:
            row = None
        if row is not None and row[0] != str(SCHEMA_VERSION):
            self.con.close()
            raise InputError(
                f"{self.path} has results-database schema {row[0]}, this harness uses "
                f"{SCHEMA_VERSION}: delete the file and run `harness results ingest` again "
                "(the database is rebuilt from the run directories)"
            )
        if row is None and write:
            self.con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ queries
    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run one SQL statement and return its result as a DataFrame.

        Raises
        ------
        InputError
            If DuckDB rejects the statement (syntax error, unknown table or column ...).
        """
        import duckdb

        try:
            result = self.con.execute(sql, params or [])
        except duckdb.Error as exc:
            raise InputError(f"query failed: {str(exc).strip()}") from None
        if result.description is None:
            return pd.DataFrame()
        return result.fetchdf()

    def table(self, name: str) -> pd.DataFrame:
        return self.query(f"SELECT * FROM {name}")

    # ------------------------------------------------------------------ ingest
    def ingest(self, roots, progress: bool = True) -> IngestSummary:
        """Load new and changed run directories and benchmark files under ``roots``.

        A unit (run directory or benchmark file) is re-read only when one of its files is new,
        gone, or has a new size/mtime *and* a new SHA-256; its old rows are then replaced.
        """
        found: Sources = discover_all(roots)
        db_file = Path(self.path).resolve() if self.path != ":memory:" else None
        summary = IngestSummary()
        units = [("run", run, root) for run, root in found.runs] + [
            ("benchmark", path, None) for path in found.benchmarks if path != db_file
        ]
        present = {str(r) for r, _ in found.runs} | set(map(str, found.benchmarks))
        self.con.execute("BEGIN TRANSACTION")
        try:
            bar = tqdm(units, desc="ingest", unit="source", disable=not progress)
            for i, (kind, path, root) in enumerate(bar, start=1):
                if kind == "run":
                    self._ingest_run(path, root, summary)
                else:
                    self._ingest_benchmark_file(path, summary)
                if i % COMMIT_EVERY == 0:  # keep progress of long ingests
                    self._flush()
                    self.con.execute("COMMIT")
                    self.con.execute("BEGIN TRANSACTION")
            self._prune(roots, present, summary)
            self._flush()
            self.con.execute("COMMIT")
        except BaseException:
            self._pending.clear()
            self._assigned.clear()
            self.con.execute("ROLLBACK")
            raise
        self._assigned.clear()
        return summary

    def _prune(self, roots, present: set[str], summary: IngestSummary) -> None:
        """Forget units under a directory root that are no longer on disk."""
        roots = [roots] if isinstance(roots, (str, os.PathLike)) else roots
        for root in (Path(r).resolve() for r in roots):
            if not root.is_dir():
                continue
            owners = self.con.execute("SELECT DISTINCT owner, source_kind FROM sources").fetchall()
            for owner, kind in owners:
                if owner in present or not Path(owner).is_relative_to(root):
                    continue
                if kind == "run":
                    run_ids = self.con.execute(
                        "SELECT run_id FROM runs WHERE path = ?", [owner]
                    ).fetchall()
                    for (run_id,) in run_ids:
                        for table in RUN_TABLES:
                            self.con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
                else:
                    self.con.execute("DELETE FROM benchmarks WHERE source = ?", [owner])
                self.con.execute("DELETE FROM sources WHERE owner = ?", [owner])
                summary.removed.append(owner)

    def _stored(self, owner: str) -> dict[str, tuple[int, int, str]]:
        rows = self.con.execute(
            "SELECT path, mtime_ns, size, sha256 FROM sources WHERE owner = ?", [owner]
        ).fetchall()
        return {p: (m, s, h) for p, m, s, h in rows}

    def _changed(self, owner: str, files: list[Path]) -> tuple[bool, list[tuple]]:
        """Whether ``files`` differ from what was ingested for ``owner``; and their new states."""
        stored = self._stored(owner)
        states, changed = [], set(stored) != {str(f) for f in files}
        for f in files:
            st = f.stat()
            old = stored.get(str(f))
            if old and old[0] == st.st_mtime_ns and old[1] == st.st_size:
                states.append((str(f), st.st_mtime_ns, st.st_size, old[2]))
                continue
            digest = _sha256(f)
            changed |= old is None or old[2] != digest
            states.append((str(f), st.st_mtime_ns, st.st_size, digest))
        return changed, states

    def _record_sources(self, owner: str, kind: str, states: list[tuple], known: bool) -> None:
        if known:
            self.con.execute("DELETE FROM sources WHERE owner = ?", [owner])
        frame = pd.DataFrame(states, columns=["path", "mtime_ns", "size", "sha256"])
        self._insert("sources", frame.assign(owner=owner, source_kind=kind))

    def _run_id(self, run_dir: Path, root: Path) -> str:
        base = root.name if run_dir == root else f"{root.name}/{run_dir.relative_to(root)}"
        existing = self.con.execute("SELECT path FROM runs WHERE run_id = ?", [base]).fetchone()
        taken_by = existing[0] if existing else self._assigned.get(base)
        run_id = base
        if taken_by is not None and taken_by != str(run_dir):
            run_id = f"{base}@{hashlib.sha1(str(run_dir).encode()).hexdigest()[:8]}"
        self._assigned[run_id] = str(run_dir)
        return run_id

    def _ingest_run(self, run_dir: Path, root: Path, summary: IngestSummary) -> None:
        try:
            manifest = read_manifest(run_dir / MANIFEST)
        except InputError as exc:
            # manifests are written atomically, so this one is corrupt or of a newer schema
            reason = str(exc).removeprefix(f"{run_dir / MANIFEST}").lstrip(": ")
            summary.bad.append((str(run_dir / MANIFEST), reason))
            return
        owner = str(run_dir)
        existing = self.con.execute("SELECT run_id FROM runs WHERE path = ?", [owner]).fetchone()
        run_id = existing[0] if existing else self._run_id(run_dir, root)
        complete = manifest.get("status") == "complete"
        files = _run_files(run_dir, manifest) if complete else [(run_dir / MANIFEST, None)]
        changed, states = self._changed(owner, [path for path, _ in files])
        if not complete:
            summary.runs_incomplete.append(run_id)
        if not changed:
            summary.runs_unchanged += 1
            return
        if existing:
            for table in RUN_TABLES:
                self.con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        self._insert("runs", pd.DataFrame([run_record(run_id, run_dir, manifest)]))
        if complete:
            self._insert_run_tables(run_id, run_dir, files, summary)
        self._record_sources(owner, "run", states, known=existing is not None)
        (summary.runs_updated if existing else summary.runs_new).append(run_id)

    def _insert_run_tables(
        self,
        run_id: str,
        run_dir: Path,
        files: list[tuple[Path, Artifact | None]],
        summary: IngestSummary,
    ) -> None:
        for path, artifact in files:
            if artifact is None:
                continue
            if artifact.db is DbTable.METRICS:
                try:
                    frame = pd.read_csv(path, sep="\t")
                except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
                    continue
                rows = metric_records(run_id, artifact, frame)
                summary.metric_rows += self._insert("metrics", rows)
            elif artifact.db is DbTable.SPECTRA:
                summary.spectra_rows += self._insert_spectra(run_id, path, artifact)

    def _insert_spectra(self, run_id: str, path: Path, artifact: Artifact) -> int:
        frame = pd.read_parquet(path)
        columns = list(artifact.columns)
        if not set(columns) <= set(frame.columns):
            return 0
        frame = frame[columns].copy()
        for col in ("run", "layer", "group", "quantity"):
            frame[col] = frame[col].astype(str)
        frame.insert(0, "run_id", run_id)
        return self._insert("spectra", frame)

    def _ingest_benchmark_file(self, path: Path, summary: IngestSummary) -> None:
        owner = str(path)
        changed, states = self._changed(owner, [path])
        if not changed:
            summary.benchmark_files_unchanged += 1
            return
        data = read_benchmark_json(path)
        if data is None:
            return
        existed = bool(self._stored(owner))
        if existed:
            self.con.execute("DELETE FROM benchmarks WHERE source = ?", [owner])
        summary.benchmark_rows += self._insert(
            "benchmarks", pd.DataFrame(benchmark_records(path, data))
        )
        self._record_sources(owner, "benchmark", states, known=existed)
        (summary.benchmark_files_updated if existed else summary.benchmark_files_new).append(owner)

    def _insert(self, table: str, frame: pd.DataFrame) -> int:
        """Queue rows for ``table``; :meth:`_flush` inserts each table's rows in one statement."""
        if frame.empty:
            return 0
        self._pending.setdefault(table, []).append(frame)
        return len(frame)

    def _flush(self) -> None:
        for table, frames in self._pending.items():
            incoming = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
            self.con.register("_incoming", incoming)
            try:
                self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming")
            finally:
                self.con.unregister("_incoming")
        self._pending.clear()


#: read-only connections run user SQL: no file access outside the database, no extension
#: loading, and settings locked so a query cannot turn either back on
SANDBOX = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


def _config(read_only: bool) -> dict:
    return dict(SANDBOX) if read_only else {}


def default_db_path(roots=None) -> Path:
    """The database used when none is named: ``$HARNESS_DB``, else ``results.duckdb`` in the
    user cache (``$HARNESS_CACHE`` or ``~/.cache/harness``), outside any tracked folder; one
    database serves every root (rows are keyed by absolute path). ``roots`` is unused and kept
    for callers of the former per-root default."""
    explicit = os.environ.get("HARNESS_DB")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness"
    return Path(cache).expanduser() / DEFAULT_DB_NAME


def load_results(paths, progress: bool = False, skip_bad: bool = False) -> ResultsDB:
    """An in-memory database holding everything under ``paths`` (for report/compare/check).

    Raises :class:`InputError` naming any unreadable run manifest unless ``skip_bad``; the
    warnings about manifests left out are then in the database's ``warnings``.
    """
    db = ResultsDB(":memory:")
    try:
        summary = db.ingest(paths, progress=progress)
        db.warnings = summary.check_bad(skip_bad)
    except BaseException:
        db.close()
        raise
    return db
