"""The GPU check scripts (tools/gpu/), run on a CPU: their flow, files and ratio table.

``DEVICE=cpu`` dry runs at tiny size: every ``cuda`` test and benchmark case skips (with the
reason), the ensemble trains the tiny preset on a 24^3 cohort, and each script still writes every
file the GPU run brings back. What the GPU measures is not checked here (no GPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools" / "gpu"
RESULTS = ROOT / "results"


def _ratios(*args: str) -> str:
    cmd = [sys.executable, str(TOOLS / "ratios.py"), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _cpu_results() -> list[str]:
    return [str(RESULTS / f"bench-{s}-cpu.json") for s in ("perturb", "kernels", "introspect")]


def _rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] != "ratio":
            rows[cells[0]] = cells[1:]
    return rows


def test_ratio_table_from_the_committed_cpu_results():
    rows = _rows(_ratios("--device", "cpu", *_cpu_results()))
    perturb = json.loads((RESULTS / "bench-perturb-cpu.json").read_text())["benchmarks"]
    by_mode = {b["extra_info"]["mode"]: b["stats"]["min"] for b in perturb}
    rr = rows["training step rr / ieee"]
    assert rr[1] == f"{by_mode['rr'] / by_mode['ieee']:.2f}x" and rr[2] == "<= 1.5x"
    assert rr[3] in ("yes", "no")
    for name in ("own ieee conv / oneDNN fp32 (TF32 off)", "own sr conv / own ieee conv",
                 "probe every step / none (cnn)", "probe every step / none (mlp)"):  # fmt: skip
        assert rows[name][1].endswith("x"), (name, rows[name])


def test_ratio_table_says_what_was_not_measured(tmp_path):
    text = _ratios("--device", "cuda", "--out", str(tmp_path / "r.md"), *_cpu_results(),
                   str(tmp_path / "missing.json"))  # fmt: skip
    rows = _rows(text)
    assert rows and all(cells[1] == "not measured" for cells in rows.values())
    assert "missing (suite not run or killed)" in text
    assert (tmp_path / "r.md").read_text() == text


def _script(name: str, out: Path, **env: str) -> subprocess.CompletedProcess:
    # no wheels: the GPU machine's (Python 3.12) would not install here; this environment has all
    environ = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "DEVICE": "cpu",
               "WHEELS": str(out.parent / "no-wheels"), **env}  # fmt: skip
    environ.pop("PYTHONPATH", None)
    return subprocess.run(["bash", str(TOOLS / name)], capture_output=True, text=True,
                          cwd=ROOT, env=environ)  # fmt: skip


def test_checks_script_dry_run_on_cpu(tmp_path):
    out = tmp_path / "out"
    result = _script("run_checks.sh", out, BUDGET_S="400")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # on a GPU the three bench-*-gpu.json come too; with every case skipped pytest-benchmark
    # writes none, and the table says so
    names = {p.name for p in out.iterdir()}
    assert names == {"gpu.txt", "checks.log", "cuda-tests.log", "ratios.md"}
    log = (out / "cuda-tests.log").read_text()
    # every cuda test was selected by its marker and skipped with the reason; none failed
    assert "skipped" in log and "needs a CUDA device" in log and "failed" not in log
    assert "test_perturb_triton.py" in log and "test_kernels_cuda.py" in log
    ratios = (out / "ratios.md").read_text()
    assert "not measured" in ratios and "bench-kernels-gpu.json" in ratios
    checks = (out / "checks.log").read_text()
    for step in ("CUDA tests (-m cuda)", "benchmark test_bench_perturb.py", "ratios", "done"):
        assert f"== {step}" in checks


def test_ensemble_script_dry_run_on_cpu(tmp_path):
    out = tmp_path / "out"
    result = _script("run_ensemble.sh", out, WORK=str(tmp_path / "work"), PRESET="tiny",
                     COHORT=str(tmp_path / "no-cohort"),
                     GRID="24", BUDGET_S="120", RESERVE_S="10", MAX_EPOCHS="2")  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sizing = json.loads((out / "sizing.json").read_text())
    for mode in ("ieee", "sr"):
        assert sizing["measured"][mode]["epoch_s"] > 0
    assert 1 <= sizing["epochs"] <= 2
    assert sizing["members"] == {"baseline": 1, "seed": 2, "mca-sr": 2}
    timings = json.loads((out / "timings.json").read_text())
    assert sorted(timings) == ["baseline", "mca-sr-01", "mca-sr-02", "seed-01", "seed-02"]
    for member in timings.values():
        assert member["status"] == "complete"
        assert len(member["epoch_seconds"]) == sizing["epochs"]
    with tarfile.open(out / "analysis.tar.gz") as archive:
        names = archive.getnames()
    assert "analysis/region_summary.tsv" in names and "manifest.json" in names
    assert json.loads((out / "environment.json").read_text())


def test_ratio_table_reads_cuda_records(tmp_path):
    # the committed CPU records relabelled as CUDA ones: the rows a GPU run fills
    paths = []
    for path in map(Path, _cpu_results()):
        data = json.loads(path.read_text())
        for record in data["benchmarks"]:
            record["extra_info"]["device"] = "cuda"
        paths.append(tmp_path / path.name)
        paths[-1].write_text(json.dumps(data))
    rows = _rows(_ratios("--device", "cuda", *map(str, paths)))
    assert rows["own ieee conv / cuDNN fp32 (TF32 off)"][1].endswith("x")
    measured = [name for name, cells in rows.items() if cells[1] != "not measured"]
    assert len(measured) == len(rows) == 10
