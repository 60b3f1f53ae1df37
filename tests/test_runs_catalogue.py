"""The catalogue of run files: declarations, run kinds, manifests, and the database mapping."""

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import InputError
from harness.runs import ARTIFACTS, MANIFEST_SCHEMA, DbTable, FileFormat, RunDir, RunKind
from harness.runs import catalogue as cat
from harness.runs.audit import audit
from harness.runs.rundir import read_manifest
from harness.store import load_results
from harness.store.extract import run_record

FIXTURE_RUNS = Path(__file__).parent / "data" / "store" / "runs"

SUFFIXES = {
    FileFormat.TSV: ".tsv",
    FileFormat.PARQUET: ".parquet",
    FileFormat.JSON: ".json",
    FileFormat.NIFTI: ".nii.gz",
    FileFormat.MGZ: ".mgz",
    FileFormat.PNG: ".png",
    FileFormat.NPY: ".npy",
    FileFormat.TORCH: ".pt",
    FileFormat.HTML: ".html",
    FileFormat.MARKDOWN: ".md",
    FileFormat.DUCKDB: ".duckdb",
    FileFormat.LOCK: ".lock",
}


def test_names_are_unique_and_match_their_format():
    names = [a.name for a in ARTIFACTS]
    assert len(names) == len(set(names))
    for artifact in ARTIFACTS:
        assert artifact.name.endswith(SUFFIXES[artifact.format]), artifact.name
        assert artifact.kinds, artifact.name
        if artifact.columns:
            assert set(artifact.keys) <= set(artifact.columns), artifact.name


def test_every_declaration_is_collected():
    declared = [v for v in vars(cat).values() if isinstance(v, cat.Artifact)]
    assert list(ARTIFACTS) == declared and cat.MANIFEST in ARTIFACTS and cat.REPORT_MD in ARTIFACTS


def test_database_mapping_is_derived_from_declarations():
    for artifact in ARTIFACTS:
        if artifact.db is DbTable.METRICS:
            assert artifact.format is FileFormat.TSV and not artifact.fields, artifact.name
        if artifact.db is DbTable.SPECTRA:
            assert artifact.format is FileFormat.PARQUET and artifact.columns, artifact.name
    loaded = {a.name for kind in RunKind for a in cat.database_artifacts(kind)}
    assert loaded == {a.name for a in ARTIFACTS if a.db is not DbTable.NONE}
    assert cat.database_artifacts(None) == ()
    assert cat.REGION_SUMMARY in cat.database_artifacts(RunKind.ENSEMBLE_ANALYSIS)
    assert cat.REGION_SUMMARY not in cat.database_artifacts(RunKind.TRAIN)


def test_a_table_is_loaded_only_from_the_kind_that_owns_it(tmp_path):
    frame = pd.DataFrame({"mode": ["rr"], "weights_sig_bits_min": [20.5]})
    for name, kind in (("owner", RunKind.SWEEP), ("stranger", RunKind.TRAIN)):
        run = RunDir(tmp_path / "runs" / name, kind=kind)
        run.start("test", {})
        run.write_table(cat.SWEEP, frame)
        run.finish()
    with load_results([tmp_path / "runs"]) as db:
        rows = db.query("SELECT run_id, table_name, value FROM metrics")
    assert rows.values.tolist() == [["runs/owner", "sweep.tsv", 20.5]]


def test_families_build_and_parse_paths(tmp_path):
    path = cat.PREDICTION.path(tmp_path, subject="sub-0001")
    assert path == tmp_path / "predictions" / "sub-0001_seg.nii.gz"
    assert cat.PREDICTION.parse(path) == {"subject": "sub-0001"}
    assert cat.T1.match("sub-01/anat/sub-01_T1w.nii.gz") == {"subject": "sub-01"}
    assert cat.T1.match("sub-01/anat/sub-02_T1w.nii.gz") is None  # one subject, named twice
    assert cat.ENTROPY_MAP.parse("x/entropy_mca-sr_sub-0002.nii.gz") == {
        "factor": "mca-sr",
        "subject": "sub-0002",
    }
    path.parent.mkdir(parents=True)
    path.touch()
    (path.parent / "notes.txt").touch()
    assert cat.PREDICTION.glob(tmp_path) == [path]
    with pytest.raises(TypeError, match="subject"):
        cat.PREDICTION.path(tmp_path)


def test_run_kind_parse():
    assert RunKind.parse("ensemble-analysis") is RunKind.ENSEMBLE_ANALYSIS
    assert RunKind.parse("sweep") is RunKind.SWEEP  # written by earlier versions
    with pytest.raises(InputError, match="run kind must be one of .* got 'bogus'"):
        RunKind.parse("bogus")
    assert RunKind.of_manifest({"kind": "bogus"}) is None
    assert RunKind.of_manifest({}) is None
    assert run_record("r", Path("x"), {"kind": "sweep"})["kind"] == "mode-sweep"


def test_undeclared_file_is_refused(tmp_path):
    run = RunDir(tmp_path, kind=RunKind.TRAIN)
    with pytest.raises(InputError, match="'loss.tsv' is not declared"):
        run.write_table("loss.tsv", pd.DataFrame({"a": [1]}))


def test_manifest_schema_is_checked_on_read(tmp_path):
    run = RunDir(tmp_path / "run", kind="train")
    run.start("harness train", {})
    assert read_manifest(run.path)["schema_version"] == MANIFEST_SCHEMA
    manifest = run.manifest_path
    newer = json.loads(manifest.read_text()) | {"schema_version": MANIFEST_SCHEMA + 1}
    manifest.write_text(json.dumps(newer))
    with pytest.raises(InputError, match=f"{manifest}.*schema_version {MANIFEST_SCHEMA + 1}"):
        run.manifest()
    manifest.write_text(json.dumps(newer | {"schema_version": "one"}))
    with pytest.raises(InputError, match="schema_version must be a positive integer"):
        run.manifest()
    manifest.write_text("[1, 2]")
    with pytest.raises(InputError, match=f"{manifest} is not a run manifest"):
        run.manifest()
    manifest.write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        run.manifest()
    manifest.write_text('{"config": {"cohort": "c"}}')  # hand-written, unversioned: version 1
    assert read_manifest(manifest)["config"] == {"cohort": "c"}


def test_audit_finds_undeclared_files_and_wrong_columns(tmp_path):
    run = RunDir(tmp_path / "g", kind=RunKind.GRANULARITY)
    run.start("test", {})
    run.write_table(cat.GRANULARITY, pd.DataFrame({"granularity": ["op"], "mode": ["sr"]}))
    (run.path / "stray.txt").write_text("x")
    (run.path / ".granularity.tsv.tmp").write_text("")  # temporary file of an atomic write
    problems = sorted(str(f) for f in audit(tmp_path))
    assert len(problems) == 2
    assert "granularity.tsv: columns ['granularity', 'mode'], declared" in problems[0]
    assert problems[1].endswith("stray.txt: not declared for a granularity run")


def test_fixture_and_committed_runs_are_catalogued():
    # the fixtures are trimmed by hand (fewer columns); the committed brain-age run is whole
    assert [str(f) for f in audit(FIXTURE_RUNS, columns=False)] == []
    assert [str(f) for f in audit(Path(__file__).parents[1] / "results" / "brainage-cpu")] == []


def test_spectra_table_has_the_declared_columns():
    from harness.store import ResultsDB

    with ResultsDB(":memory:") as db:
        columns = db.query("DESCRIBE spectra")["column_name"].tolist()
    assert columns == ["run_id", *cat.SPECTRA.columns]
