"""Build contexts assembled in a temporary folder: the image's folder plus what its spec lists.

Layout of a context (``containers/standard/Dockerfile`` relies on it)::

    Dockerfile, README.md ...      the image's folder under containers/
    wheelhouse/deps/*.whl          dependency wheels (hard links into the host cache when possible)
    wheelhouse/deps/requirements.txt
    wheelhouse/harness/harness-*.whl
    benchmarks/*.py                the pytest-benchmark suites
    kernels/*                      the C/CUDA kernel sources
    <extra files>                  ``context_files`` of the caller, at the paths it names
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from harness.containers.images import BENCH_DIR, ContextPart, ImageSpec, TorchVariant
from harness.errors import InputError, MissingDependencyError

KERNELS_DIR = Path(__file__).resolve().parents[1] / "kernels" / "csrc"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".benchmarks")


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def copy_folder(src: Path, dest: Path) -> None:
    """Copy ``src`` into ``dest`` following symlinks, without caches."""
    if not src.is_dir():
        raise MissingDependencyError(
            f"{src} is missing: this harness installation lacks the files of its images "
            "(reinstall harness, or run from its source tree)"
        )
    shutil.copytree(src, dest, ignore=_IGNORE, dirs_exist_ok=True)


def check_context_path(name: str) -> PurePosixPath:
    """A relative path inside the context, or :class:`InputError`."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise InputError(
            f"context_files target must be a relative path inside the context, got {name!r}"
        )
    return path


def assemble_context(
    image: ImageSpec,
    dest: Path,
    *,
    torch: str,
    variant: TorchVariant = TorchVariant.CPU,
    context_files: Mapping[Path, str] | None = None,
    progress=None,
) -> Path:
    """Fill ``dest`` with everything the build of ``image`` needs; return ``dest``."""
    from harness.containers import wheelhouse

    targets = {Path(src): check_context_path(name) for src, name in (context_files or {}).items()}
    for src in targets:
        if not src.exists():
            raise InputError(f"context_files source {src} does not exist")
    if not (image.directory / "Dockerfile").is_file():
        raise MissingDependencyError(
            f"no recipe for the {image.kind.value} image: {image.directory}/Dockerfile is missing "
            "(this harness does not ship that image yet, or its package data was not installed)"
        )
    copy_folder(image.directory, dest)
    if ContextPart.WHEELHOUSE in image.parts:
        deps = wheelhouse.dependency_wheelhouse(torch, variant, progress=progress)
        (dest / "wheelhouse" / "deps").mkdir(parents=True)
        for wheel in deps.iterdir():
            if wheel.suffix == ".whl" or wheel.name == wheelhouse.REQUIREMENTS_FILE:
                _link_or_copy(wheel, dest / "wheelhouse" / "deps" / wheel.name)
        wheelhouse.harness_wheel(dest / "wheelhouse" / "harness")
    if ContextPart.BENCHMARKS in image.parts:
        copy_folder(BENCH_DIR, dest / "benchmarks")
    if ContextPart.KERNELS in image.parts:
        copy_folder(KERNELS_DIR, dest / "kernels")
    for src, name in targets.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            copy_folder(src, target)
        else:
            shutil.copy2(src, target)
    return dest
