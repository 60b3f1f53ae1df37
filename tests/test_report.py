"""``harness report``: golden Markdown, self-contained HTML, rendering in headless Chromium.

Regenerate the golden file and the documentation screenshot only on purpose:

    HARNESS_UPDATE_GOLDEN=1 pytest tests/test_report.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from harness.report import build_report

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "report-golden.md"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "report-screenshot.png"
FROZEN = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
UPDATE = os.environ.get("HARNESS_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory):
    """The report of every fixture under tests/data/store (built once; figures take seconds)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    cwd = os.getcwd()
    os.chdir(DATA)  # inputs named relative to tests/data, so the Markdown has no absolute path
    try:
        return build_report(["store"], out, now=FROZEN)
    finally:
        os.chdir(cwd)


def test_markdown_matches_golden(fixture_report):
    _, md_path = fixture_report
    text = md_path.read_text()
    if UPDATE:
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "report.md changed; HARNESS_UPDATE_GOLDEN=1 to accept"


def test_sections_follow_the_data(fixture_report):
    html_path, md_path = fixture_report
    md = md_path.read_text()
    for title in ("Significant bits per kernel", "Throughput", "Ensemble agreement", "Brain age",
                  "Gradient spectra", "Perturbation sweep", "Environment"):  # fmt: skip
        assert f"## {title}" in md
    assert "Generated 2026-01-02 03:04 UTC" in md
    assert "1 run(s) are not complete" in md
    # the crashed run's table (weights_sig_bits_min forced to 0) never shows as a result
    assert "crashed-sweep (Fixture CPU)" not in md


def test_html_is_self_contained(fixture_report):
    html = fixture_report[0].read_text()
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(?!data:image/png;base64,|#)', html)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 6  # sig bits, throughput, regions, entropy montage, MAE, spectra
    assert html.count("<table>") >= 10


def test_only_benchmarks_gives_only_their_sections(tmp_path):
    bench = Path(__file__).resolve().parent.parent / "results" / "bench-perturb-cpu.json"
    _, md_path = build_report(bench, tmp_path / "r.html", now=FROZEN)
    md = md_path.read_text()
    assert "## Throughput" in md and "test_bench_training_step_cpu[rr]" in md
    assert "## Significant bits" not in md and "## Ensemble agreement" not in md


CHECK_SCRIPT = """
<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const loaded = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.src.startsWith('data:'));
  const out = document.createElement('pre');
  out.id = 'render-check';
  out.textContent = `images=${imgs.length} loaded=${loaded.length} ` +
    `tables=${document.querySelectorAll('table').length} ` +
    `rows=${document.querySelectorAll('tbody tr').length}`;
  document.body.appendChild(out);
});
</script>
"""


CHROMIUM_MISSING = (
    "headless Chromium is required for this test: apt-get install -y chromium "
    "(Debian/Ubuntu; or put a chromium executable on PATH)"
)


def _chromium() -> str:
    """The Chromium executable; outside CI a missing one skips (with the install command),
    in CI (``CI`` set) it fails, because there the render check must run."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(CHROMIUM_MISSING + "; CI is set, so the render check cannot be skipped")
        pytest.skip(CHROMIUM_MISSING)
    return exe


def test_missing_chromium_skips_outside_ci_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        _chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        _chromium()


def test_renders_in_headless_chromium(fixture_report, tmp_path):
    exe = _chromium()
    html_path = fixture_report[0]
    html = html_path.read_text()
    # a test-only copy with a probe script; the report itself has no script
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", CHECK_SCRIPT + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--virtual-time-budget=5000"]  # fmt: skip
    dom = subprocess.run(
        [exe, *flags, "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    match = re.search(r"images=(\d+) loaded=(\d+) tables=(\d+) rows=(\d+)", dom.stdout)
    assert match, dom.stdout[-2000:] + dom.stderr[-2000:]
    images, loaded, tables, rows = map(int, match.groups())
    assert images == 6 and loaded == images
    assert tables == html.count("<table>") and rows > 40

    shot = SCREENSHOT if UPDATE else tmp_path / "shot.png"
    subprocess.run(
        [exe, *flags, f"--screenshot={shot}", "--window-size=1100,1800", html_path.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1800, 1100)
    assert pixels.std() > 10  # text, tables and charts, not a blank page
    assert SCREENSHOT.is_file(), "the documentation screenshot is committed"


def test_report_cli(run_cli, tmp_path):
    bench = Path(__file__).resolve().parent.parent / "results" / "bench-kernels-cpu.json"
    code, out, err = run_cli("report", bench, "-o", tmp_path / "k" / "report.html")
    assert code == 0, err
    assert (tmp_path / "k" / "report.html").is_file() and (tmp_path / "k" / "report.md").is_file()
    assert "## Significant bits per kernel" in (tmp_path / "k" / "report.md").read_text()
    code, _, err = run_cli("report", tmp_path / "nothing-here", "-o", tmp_path / "r.html")
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli("report", bench, "-o", tmp_path / "r.pdf")
    assert code == 2 and "must end in .html" in err


def test_report_and_db_on_a_real_ensemble_analysis(tmp_path):
    """The producer's own output (harness.ensemble.analyze) feeds the database and the report."""
    import nibabel as nib
    import pandas as pd

    from harness.ensemble.analyze import analyze_ensemble
    from harness.store import load_results

    rng = np.random.default_rng(0)
    cohort, ens = tmp_path / "cohort", tmp_path / "ens"
    cohort.mkdir()
    pd.DataFrame(
        {"label": [0, 17, 4], "name": ["Unknown", "Left-Hippocampus", "Left-Lateral-Ventricle"],
         "kind": ["background", "subcortical", "csf"]}
    ).to_csv(cohort / "labels.tsv", sep="\t", index=False)  # fmt: skip

    def save(path, data):
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(data.astype(np.int32), np.eye(4)), str(path))

    truth = rng.choice([0, 17, 4], size=(8, 8, 6), p=[0.5, 0.3, 0.2])
    save(cohort / "sub-01" / "anat" / "sub-01_dseg.nii.gz", truth)
    for member, flip in {"baseline": 0.0, "seed-01": 0.1, "seed-02": 0.1, "seed-03": 0.2}.items():
        pred = np.where(rng.random(truth.shape) < flip, rng.choice([0, 17, 4], truth.shape), truth)
        save(ens / "members" / member / "predictions" / "sub-01_seg.nii.gz", pred)
    analysis = analyze_ensemble(ens, cohort)

    db = load_results([ens])
    runs = db.query("SELECT kind, status FROM runs")
    assert runs.values.tolist() == [["ensemble-analysis", "complete"]]
    stability = db.query(
        "SELECT labels, value FROM metrics WHERE table_name = 'region_summary.tsv' "
        "AND metric = 'mean_min_dice' ORDER BY labels"
    )
    expected = pd.read_csv(analysis / "region_summary.tsv", sep="\t")["mean_min_dice"]
    assert sorted(stability["value"].dropna()) == pytest.approx(sorted(expected.dropna()))

    html_path, md_path = build_report([ens], tmp_path / "out" / "report.html", now=FROZEN)
    md = md_path.read_text()
    assert "## Ensemble agreement" in md and "Left-Hippocampus" in md
    assert "Voxel-wise label entropy across members, seed_sub-01" in md
    assert html_path.read_text().count('<img src="data:image/png;base64,') == 2
