"""The report shows its numbers' conditions: threads, load and rounds beside timings (warned when
load > cores), collapsed long tables with a TSV download, charts that say when there is nothing
to draw, units in headers, negative R² flagged, device-specific environment fields only."""

import base64
import json
import re
from pathlib import Path

import pandas as pd

from harness.report import build_report
from harness.report.model import Report, Section, Table
from harness.report.render import to_html, to_markdown_report
from harness.report.sections import _applicable, _chart

FIXTURE = Path(__file__).parent / "data" / "store" / "bench-cpu-fixture.json"


def test_timings_under_load_are_warned_with_threads_and_load(tmp_path):
    data = json.loads(FIXTURE.read_text())
    for bench in data["benchmarks"]:
        bench["extra_info"]["environment"]["threads"] = {
            "torch_intra_op": 2, "cores_available": 2, "load_avg_1m": 5.5,
        }  # fmt: skip
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    _, md = build_report(path, tmp_path / "r.html")
    text = md.read_text()
    n = len(data["benchmarks"])
    assert f"Warning: {n} of {n} timings were taken under a load average above the core count" in text
    header = next(line for line in text.splitlines() if line.startswith("| benchmark |"))
    for column in ("mean (ms)", "rounds", "threads", "load (1 min)", "cores"):
        assert column in header
    assert '<p class="warn">' in (tmp_path / "r.html").read_text()


def test_long_tables_collapse_with_the_full_tsv_embedded():
    frame = pd.DataFrame({"layer": [f"l{i}" for i in range(283)], "value (1)": range(283)})
    report = Report("t", "now", [], [Section("S", "s", blocks=[Table(frame, "Statistics")])])
    html = to_html(report)
    assert html.count("<tr>") == 1 + 25  # header + the rows shown
    assert "Showing 25 of 283 rows" in html
    encoded = re.search(r'href="data:text/tab-separated-values;base64,([^"]+)"', html).group(1)
    tsv = base64.b64decode(encoded).decode()
    assert tsv.splitlines()[0] == "layer\tvalue (1)" and len(tsv.splitlines()) == 284
    assert "(258 more rows in r.html" in to_markdown_report(report, "r.html")


def test_charts_say_when_there_is_nothing_to_draw():
    def draw():
        raise AssertionError("not drawn")

    assert _chart(pd.Series([0.0, 0.0]), "Dice", draw) == "Dice: no chart, every value is 0."
    assert "missing (NaN)" in _chart(pd.Series([float("nan")] * 3), "Dice", draw)
    assert _chart(pd.Series([0.0, 0.5]), "Dice", lambda: b"png").png == b"png"


def test_environment_shows_only_what_applies_to_the_device():
    cpu = {"cpu_model": "EPYC", "cuda_available": False, "gpu_name": None, "tf32_cudnn": True,
           "tf32_matmul": False, "cudnn": 91900, "container_image": "unknown-docker-image",
           "threads": {"torch_intra_op": 1}}  # fmt: skip
    row = _applicable(cpu)
    assert row["tf32_cudnn"] is None and row["cudnn"] is None and row["container_image"] is None
    assert row["threads"] == 1 and row["cpu_model"] == "EPYC"
    gpu = cpu | {"cuda_available": True, "gpu_name": "H200", "container_image": "harness:cuda"}
    assert _applicable(gpu)["tf32_cudnn"] is True
    assert _applicable(gpu)["container_image"] == "harness:cuda"


def test_negative_r2_is_flagged(tmp_path):
    from harness.runs import RunDir, catalogue

    run = RunDir(tmp_path / "runs" / "ba", kind="brainage")
    run.start("harness brainage", {})
    summary = pd.DataFrame({"regressor": ["rf", "svr"], "augmentation": ["none", "none"],
                            "k": [0, 0], "mae_mean": [9.0, 12.0], "r2_mean": [0.3, -0.4]})  # fmt: skip
    for name in catalogue.BRAINAGE_SUMMARY.columns:  # the declared columns
        if name not in summary:
            summary[name] = float("nan")
    run.write_table(catalogue.BRAINAGE_SUMMARY, summary)
    run.finish()
    _, md = build_report(tmp_path / "runs", tmp_path / "r.html")
    text = md.read_text()
    assert "Warning: 1 of 2 rows have R² < 0" in text
    assert "yes (R² < 0)" in text and "MAE (years)" in text
