"""Wheelhouses made on the host: the image builds install from them with ``--no-index``.

Resolving ``torch==X`` on the host gives the CPU wheel (the host's index serves it); resolved inside
a container it would pull the multi-GB CUDA build. So every Python package an image needs is
downloaded here with ``pip download --only-binary=:all:`` into a cache folder keyed by the
requirement set (``$HARNESS_CACHE/wheelhouse/<key>``, default ``~/.cache/harness``): a rebuild with
the same requirements downloads nothing. harness itself becomes a wheel (``pip wheel --no-deps``)
made fresh for each build, from the source tree when there is one, else from the installed package.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.containers.images import TorchVariant
from harness.errors import InputError, MissingDependencyError

#: test tools the images carry besides harness's runtime dependencies
TEST_REQUIREMENTS = ("pytest>=8", "pytest-benchmark>=4")
REQUIREMENTS_FILE = "requirements.txt"
_VERSION = re.compile(r"^\d+(\.\d+){1,2}([a-z]+\d+)?(\+[a-z0-9.]+)?$")


def cache_root() -> Path:
    """``$HARNESS_CACHE`` or ``~/.cache/harness``."""
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness")


def check_torch_version(value: str) -> str:
    """Raise :class:`InputError` unless ``value`` looks like a torch release (``2.13.0``)."""
    if not isinstance(value, str) or not _VERSION.match(value):
        raise InputError(f"--torch must be a torch release such as '2.13.0', got {value!r}")
    return value


def source_root() -> Path | None:
    """The source tree harness was imported from (a checkout with pyproject.toml), if any."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "harness"' in pyproject.read_text():
        return root
    return None


def runtime_requirements() -> list[str]:
    """harness's runtime dependencies (from pyproject.toml, else the installed metadata)."""
    root = source_root()
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10 reads the installed metadata
        root = None
    if root is not None:
        return list(tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"])
    requires = importlib.metadata.requires("harness") or []
    return [r for r in requires if "extra ==" not in r]


def requirements(torch: str, variant: TorchVariant = TorchVariant.CPU) -> list[str]:
    """The requirement lines of an image: harness's dependencies with torch pinned, test tools."""
    check_torch_version(torch)
    lines = [r for r in runtime_requirements() if not re.match(r"^torch\b(?![-_])", r)]
    return sorted({*lines, *TEST_REQUIREMENTS, f"torch=={torch}"}, key=str.lower)


def cache_key(lines: list[str], variant: TorchVariant) -> str:
    """A short digest of the requirement set, the variant and the target Python."""
    text = "\n".join(
        [*sorted(lines), variant.value, f"cp{sys.version_info.major}{sys.version_info.minor}"]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pip(args: list[str], what: str, env: dict[str, str] | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise MissingDependencyError(f"{what} failed (`{' '.join(cmd)}`):\n{tail}")


def check_torch_wheel(folder: Path, variant: TorchVariant) -> Path:
    """The torch wheel in ``folder``; for the CPU variant, refuse a CUDA build.

    Raises
    ------
    MissingDependencyError
        No torch wheel, or a CUDA build where the CPU one was asked for (the message says how
        to point pip at the CPU index).
    """
    wheels = sorted(folder.glob("torch-*.whl"))
    if not wheels:
        raise MissingDependencyError(f"no torch wheel was downloaded into {folder}")
    cuda = any(folder.glob("nvidia_*.whl")) or any(folder.glob("cuda_*.whl"))
    if variant is TorchVariant.CUDA and (not cuda or "+cpu" in wheels[0].name):
        raise MissingDependencyError(
            f"asked for a CUDA torch but pip resolved {wheels[0].name} without CUDA libraries; "
            "point pip at an index with the CUDA build (PyPI's Linux wheels are CUDA builds)"
        )
    if variant is TorchVariant.CPU and cuda:
        raise MissingDependencyError(
            f"the host's pip resolved {wheels[0].name} to a CUDA build (nvidia-* wheels came "
            "with it); for a CPU image point pip at the CPU index, e.g. "
            "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu, or build with "
            "--torch-variant cuda"
        )
    return wheels[0]


def cuda_pip_env(scratch: Path) -> dict[str, str]:
    """pip settings that keep local CPU wheels out of a CUDA wheelhouse.

    A ``find-links`` folder holding ``torch-X+cpu`` wins over the index's CUDA ``torch-X``
    (a local version sorts higher), and an empty ``PIP_FIND_LINKS`` does not override a config
    file: so pip's config files are ignored and find-links points at an empty folder.
    ``PIP_INDEX_URL`` still selects a mirror.
    """
    empty = scratch / "no-find-links"
    empty.mkdir(exist_ok=True)
    return {"PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": str(empty)}


def dependency_wheelhouse(
    torch: str, variant: TorchVariant = TorchVariant.CPU, *, progress=None
) -> Path:
    """The cached folder of wheels for ``requirements(torch, variant)``, downloaded if missing."""
    lines = requirements(torch, variant)
    folder = cache_root() / "wheelhouse" / cache_key(lines, variant)
    if (folder / REQUIREMENTS_FILE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        (tmp / "requested.txt").write_text("\n".join(lines) + "\n")
        if progress:
            progress(f"downloading wheels for {len(lines)} requirements into {folder}")
        args = ["download", "-q", "--only-binary=:all:", "-d", str(tmp)]
        env = cuda_pip_env(tmp) if variant is TorchVariant.CUDA else None
        _pip([*args, "-r", str(tmp / "requested.txt")], "pip download of the image's wheels", env)
        check_torch_wheel(tmp, variant)
        (tmp / REQUIREMENTS_FILE).write_text("\n".join(lines) + "\n")
        if not folder.exists():  # another process may have filled it meanwhile
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def harness_wheel(dest: Path) -> Path:
    """Build a wheel of this harness (no dependencies) into ``dest`` and return its path.

    The wheel is built from a clean copy (symlinked package data resolved), so no stale
    ``build/`` folder of the source tree can leak old files into it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-wheel-") as tmp:
        project = Path(tmp) / "src"
        root = source_root()
        if root is None:
            _project_from_installed(project)
        else:
            _project_from_source(root, project)
        args = ["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest), str(project)]
        _pip(args, "building the harness wheel")
    wheels = sorted(dest.glob("harness-*.whl"))
    if not wheels:
        raise MissingDependencyError(f"pip wheel made no harness wheel in {dest}")
    return wheels[0]


_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", ".pytest_cache")


def _project_from_source(root: Path, dest: Path) -> Path:
    """The source tree's pyproject.toml, README and package, copied with symlinks followed."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, dest / name)
    shutil.copytree(root / "harness", dest / "harness", ignore=_IGNORE)
    return dest


def _project_from_installed(dest: Path) -> Path:
    """A buildable project (pyproject.toml + the package) made from the installed harness."""
    import harness

    package = Path(harness.__file__).resolve().parent
    shutil.copytree(package, dest / "harness", ignore=_IGNORE)
    meta = importlib.metadata.metadata("harness")
    deps = [r for r in (importlib.metadata.requires("harness") or []) if "extra ==" not in r]
    (dest / "pyproject.toml").write_text(pyproject_text(meta["Version"], deps))
    return dest


def pyproject_text(version: str, dependencies: list[str]) -> str:
    """A minimal pyproject.toml for rebuilding harness from its installed files."""
    deps = ",\n".join(f"    {d!r}".replace("'", '"') for d in dependencies)
    return (
        '[build-system]\nrequires = ["setuptools>=68", "wheel"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "harness"\nversion = "{version}"\nrequires-python = ">=3.10"\n'
        f"dependencies = [\n{deps}\n]\n\n"
        '[project.scripts]\nharness = "harness.cli:main"\n\n'
        '[tool.setuptools.packages.find]\ninclude = ["harness*"]\n\n'
        '[tool.setuptools.package-data]\n"*" = ["**/*"]\n'
    )
