"""An installed harness (a wheel in a fresh virtual environment, not this checkout) runs the main
job, ``harness demo --size tiny``, from a folder that is not the checkout.

The wheel is built from a copy of the files a build reads and installed without its
dependencies; a ``.pth`` line then puts this environment's site-packages (torch and the rest)
after the fresh environment's own, so nothing is downloaded. A path line in a ``.pth`` file adds
the folder only: the ``.pth`` files inside it (this checkout's editable install among them) are
not processed, so the only harness the fresh interpreter can import is the installed one, which
the test asserts. That every import of the package is declared in ``pyproject.toml`` is checked
separately, in ``tests/test_hygiene.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: what the build reads: the package, its metadata and the folders reached through its symlinks
BUILD_INPUTS = ("pyproject.toml", "README.md", "harness", "kernels", "containers", "benchmarks")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.egg-info", ".pytest_cache")


def _run(command, cwd: Path, env: dict, timeout: int = 1500) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _environment() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return env | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _fresh_venv(tmp_path: Path, env: dict) -> Path:
    """A wheel of this checkout installed into a new virtual environment; returns its root."""
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=_IGNORE)
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-w", wheels,
          source], tmp_path, env)  # fmt: skip
    (wheel,) = wheels.glob("harness-*.whl")
    fresh = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", fresh], tmp_path, env)
    _run([*pip, "--python", fresh / "bin" / "python", "install", "--no-deps", "--no-index",
          wheel], tmp_path, env)  # fmt: skip
    (site,) = (fresh / "lib").glob("python*/site-packages")
    here = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "dependencies.pth").write_text("".join(f"{p}\n" for p in here))
    return fresh


def test_installed_package_runs_the_demo(tmp_path):
    env = _environment()
    fresh = _fresh_venv(tmp_path, env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    python = fresh / "bin" / "python"
    probe = "import harness, pytest_benchmark; print(harness.__file__)"
    location = Path(_run([python, "-c", probe], elsewhere, env).stdout.strip())
    assert location.is_relative_to(fresh) and not location.is_relative_to(ROOT), location
    assert (location.parent / "containers" / "suites" / "test_bench_kernels.py").is_file()

    done = _run([fresh / "bin" / "harness", "demo", "--size", "tiny", "--out", "demo"],
                elsewhere, env)  # fmt: skip
    out = elsewhere / "demo"
    for path in ("kernel-bench/bench-kernels.json", "introspect/spectra.parquet",
                 "brainage/summary.tsv", "report/report.html"):  # fmt: skip
        assert (out / path).is_file(), path
    bench = json.loads((out / "kernel-bench/bench-kernels.json").read_text())
    assert {b["extra_info"]["mode"] for b in bench["benchmarks"]} >= {"native", "ieee", "sr"}
    assert f"report: {Path('demo', 'report', 'report.html')}" in done.stdout
    assert not (elsewhere / ".pytest_cache").exists()  # the suites ran without a cache
