"""CUDA tests are selected by the ``cuda`` marker only: never by test-name matching.

The root ``conftest.py`` skips every ``cuda``-marked test, with the reason, where
``torch.cuda.is_available()`` is False; the GPU script runs ``pytest -m cuda``. So a test that
needs CUDA but lacks the marker would fail on CPU machines or be left out on the GPU one, and a
test that gates itself on CUDA by hand would hide from ``-m cuda``: both are caught here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = [ROOT / "tests", ROOT / "benchmarks"]


def _test_modules() -> list[Path]:
    return sorted(p for suite in SUITES for p in suite.glob("test_*.py"))


def test_no_test_gates_itself_on_cuda_by_hand():
    offenders = []
    for path in _test_modules():
        if path == Path(__file__).resolve():
            continue
        text = path.read_text()
        gated = re.search(r"skip\w*\([^)]*(needs|requires|without|no) (a )?CUDA", text, re.I)
        if "cuda.is_available()" in text or gated:
            offenders.append(path.relative_to(ROOT).as_posix())
    assert not offenders, f"use @pytest.mark.cuda instead of checking for CUDA in: {offenders}"


def test_gpu_scripts_select_cuda_tests_by_marker():
    lines = [
        line
        for script in sorted((ROOT / "tools" / "gpu").glob("*.sh"))
        for line in script.read_text().splitlines()
        if "pytest" in line and not line.lstrip().startswith("#")
    ]
    assert lines, "tools/gpu/ runs no pytest"
    for line in lines:
        assert not re.search(r"(^|\s)-k(\s|$)", line), f"selection by name: {line.strip()}"
    assert any("-m cuda" in line for line in lines)


def _collect(marker: str, paths: list[Path]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    cmd += ["-m", marker, *map(str, paths)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode in (0, 5), result.stdout[-3000:] + result.stderr[-3000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_every_cuda_parameter_carries_the_marker():
    # a test parametrised over devices or cases names the CUDA ones in its id: "[...cuda...]"
    paths = [p for p in _test_modules() if "cuda" in p.read_text().lower()]
    unmarked = [
        node
        for node in _collect("not cuda", paths)
        if "[" in node and "cuda" in node[node.index("[") :].lower()
    ]
    assert not unmarked, f"CUDA parameters without pytest.mark.cuda: {unmarked[:10]}"
    marked = _collect("cuda", paths)
    # each CUDA suite the GPU script runs has marked tests (the marker is really used)
    for module in ("test_perturb_cuda.py", "test_kernels_cuda.py", "test_perturb_triton.py",
                   "test_introspect_probe.py", "test_bench_perturb.py", "test_bench_kernels.py",
                   "test_bench_introspect.py"):  # fmt: skip
        assert any(node.split("::")[0].endswith(module) for node in marked), module
