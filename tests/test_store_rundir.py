import os

import pandas as pd
import pytest

from harness.errors import InputError
from harness.store import RunDir, atomic_write_json, atomic_write_table, read_json
from harness.store import rundir as rundir_mod


def test_atomic_json_roundtrip(tmp_path):
    path = atomic_write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1.5, None]})
    assert read_json(path) == {"a": [1.5, None], "b": 1}


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"v": 1})

    def boom(fd):
        raise OSError("disk died mid-write")

    monkeypatch.setattr(rundir_mod.os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write_json(path, {"v": 2})
    assert read_json(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp litter


def test_table_formats(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    for name in ("t.tsv", "t.parquet"):
        atomic_write_table(tmp_path / name, frame)
    assert pd.read_csv(tmp_path / "t.tsv", sep="\t").equals(frame)
    assert pd.read_parquet(tmp_path / "t.parquet").equals(frame)
    with pytest.raises(InputError, match="tsv or .parquet"):
        atomic_write_table(tmp_path / "t.csv", frame)


def test_rundir_lifecycle_and_resume(tmp_path):
    run = RunDir(tmp_path / "run", kind="train")
    run.start("harness train", {"epochs": 2})
    assert run.exists() and not run.is_complete()
    assert run.manifest()["environment"]["torch"]
    run.start("harness train", {"epochs": 2})  # a resumed attempt
    assert run.manifest()["attempts"] == 2
    run.finish()
    assert run.is_complete()
    assert run.manifest()["timings"]["wall_s"] >= 0


def test_read_json_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        read_json(bad)
    assert os.path.exists(bad)
