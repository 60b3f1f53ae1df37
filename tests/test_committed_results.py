"""The committed result sets under results/ are discoverable runs that the report shows."""

from pathlib import Path

from harness.report import build_report
from harness.runs import read_manifest
from harness.runs.audit import audit
from harness.store.discover import discover

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_every_committed_result_folder_is_a_complete_run():
    folders = sorted(p for p in RESULTS.iterdir() if p.is_dir())
    assert folders, "results/ holds result sets"
    found = {run for run, _ in discover(RESULTS).runs}
    for folder in folders:
        assert folder in found, f"{folder.name} has no manifest.json: not a run"
        assert read_manifest(folder)["status"] == "complete"
    assert RESULTS / "ensemble-cpu" / "analysis" in found
    # only top-level benchmark files and the README lie outside a run
    outside = {f.path for f in audit(RESULTS, columns=False) if "not inside a run" in f.problem}
    assert outside <= {*RESULTS.glob("*.json"), RESULTS / "README.md"}


def test_committed_ensemble_files_are_declared():
    # the tables predate columns the analysis writes now (n_members, matched_*): names only
    assert [str(f) for f in audit(RESULTS / "ensemble-cpu", columns=False)] == []


def test_report_over_results_shows_every_result_set(tmp_path):
    _, md = build_report(RESULTS, tmp_path / "r.html")
    text = md.read_text()
    for section in ("## Throughput", "## Ensemble agreement", "## Brain age"):
        assert section in text
    assert "No results found" not in text
    # the committed ensemble has regions at Dice 0 and NaN: said in words, not as empty bars
    assert "pairs have mean minimum Dice 0" in text
