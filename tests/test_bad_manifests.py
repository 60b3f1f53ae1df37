"""Unreadable run manifests are named, and fail ingest, report, compare and check unless --skip-bad."""

import json

import pytest

from harness.runs import RunDir


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "runs"
    good = RunDir(root / "good", kind="sweep")
    good.start("harness sweep", {"a": 1})
    good.finish()
    (root / "corrupt").mkdir()
    (root / "corrupt" / "manifest.json").write_text('{"kind": "train", "status": ')
    (root / "future").mkdir()
    (root / "future" / "manifest.json").write_text(json.dumps({"schema_version": 99}))
    return root


def _named(err, root):
    return str(root / "corrupt" / "manifest.json") in err and str(
        root / "future" / "manifest.json"
    ) in err


def test_ingest_names_bad_manifests_and_fails(run_cli, root, tmp_path):
    code, out, err = run_cli("results", "ingest", root, "--db", tmp_path / "r.duckdb", "--quiet")
    assert code == 2
    assert "Traceback" not in err
    assert _named(err, root)
    assert "not valid JSON" in err and "schema_version 99" in err and "--skip-bad" in err
    assert "1 new" in out and "2 unreadable manifests left out" in out  # the good run is kept


def test_ingest_skip_bad_warns_and_succeeds(run_cli, root, tmp_path):
    code, out, err = run_cli(
        "results", "ingest", root, "--db", tmp_path / "r.duckdb", "--quiet", "--skip-bad"
    )
    assert code == 0
    assert _named(err, root) and err.count("warning: left out unreadable manifest") == 2


def test_report_names_bad_manifests_and_fails(run_cli, root, tmp_path):
    html = tmp_path / "out" / "r.html"
    code, _, err = run_cli("report", root, "-o", html)
    assert code == 2 and _named(err, root) and not html.exists()
    code, _, err = run_cli("report", root, "-o", html, "--skip-bad")
    assert code == 0 and _named(err, root) and html.exists()


@pytest.fixture
def with_bench(root):
    """The bad-manifest root plus a committed benchmark file, so that there is something to
    compare."""
    import shutil
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "results" / "bench-kernels-cpu.json"
    shutil.copy(bench, root / bench.name)
    return root, bench


def test_compare_names_bad_manifests_and_fails_unless_skip_bad(run_cli, with_bench):
    root, bench = with_bench
    code, _, err = run_cli("compare", root, bench)
    assert code == 2 and _named(err, root) and "--skip-bad" in err and "Traceback" not in err
    code, out, err = run_cli("compare", root, bench, "--skip-bad", "--format", "tsv")
    assert code == 0 and _named(err, root)
    assert err.count("warning: left out unreadable manifest") == 2
    assert "same" in out


def test_check_names_bad_manifests_and_fails_unless_skip_bad(run_cli, with_bench):
    root, bench = with_bench
    code, _, err = run_cli("check", "--baseline", bench, "--current", root)
    assert code == 2 and _named(err, root) and "Traceback" not in err
    code, out, err = run_cli("check", "--baseline", bench, "--current", root, "--skip-bad")
    assert code == 0 and _named(err, root) and "check passed" in out
