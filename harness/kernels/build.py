"""Just-in-time build of the instrumented kernels, one cached extension per arithmetic mode.

The C kernels (``kernels/kernels_cpu.c``) are compiled as C99 by the C compiler (``$CC``, else
``gcc``/``cc``) into an object that the torch binding
(``kernels/binding.cpp``, built with :func:`torch.utils.cpp_extension.load`) links. When
``torch.cuda.is_available()``, the CUDA sources (``kernels/*.cu``) are compiled by nvcc into the same
extension. Builds are cached under :func:`cache_dir` keyed by mode, torch version and a hash of the
sources, so each variant compiles once per machine. The Verificarlo build is a standalone C library
(:mod:`harness.kernels.vfc`), not a torch extension.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
import warnings
from enum import Enum
from functools import cache
from pathlib import Path
from types import ModuleType

from harness.enums import parse_enum
from harness.errors import InputError, MissingDependencyError

SOURCE_DIR = Path(__file__).resolve().parent / "csrc"
C_SOURCE = "kernels_cpu.c"
BINDING = "binding.cpp"
CUDA_SOURCES = ("conv2d_cuda.cu", "batchnorm_cuda.cu")


class KernelMode(Enum):
    """Arithmetic compiled into the kernels (see ``kernels/arith.h``)."""

    IEEE = "ieee"
    SR = "sr"
    RR = "rr"


class BuildVariant(Enum):
    """How the C kernels are compiled: the system C compiler, or Verificarlo (``ieee`` source)."""

    NATIVE = "native"
    VERIFICARLO = "verificarlo"


def parse_mode(mode) -> KernelMode:
    """Turn ``"ieee" | "sr" | "rr"`` (or an Enum with such a ``value``) into :class:`KernelMode`."""
    return parse_enum(KernelMode, getattr(mode, "value", mode), "mode")


def cache_dir() -> Path:
    """Root of the build cache: ``$HARNESS_KERNELS_CACHE`` or ``~/.cache/harness/kernels``."""
    root = os.environ.get("HARNESS_KERNELS_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "harness" / "kernels"


#: a build lock older than this was left by a killed build (torch's FileBaton waits forever)
STALE_LOCK_SECONDS = 600


def make_build_dir(path: Path) -> Path:
    """Create a build folder under the cache, or raise :class:`MissingDependencyError`; remove
    the lock of a build that was killed (older than :data:`STALE_LOCK_SECONDS`)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MissingDependencyError(
            f"the kernel cache {path} cannot be created ({exc}); set HARNESS_KERNELS_CACHE "
            "to a writable folder"
        ) from exc
    lock = path / "lock"
    try:
        if time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            warnings.warn(f"removing the stale build lock {lock}", RuntimeWarning, stacklevel=2)
            lock.unlink(missing_ok=True)
    except FileNotFoundError:
        pass
    return path


def source_hash() -> str:
    """Short hash of every kernel source file: a changed source gives a new cached build."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.iterdir()):
        if path.suffix in {".c", ".h", ".cu", ".cuh", ".cpp"}:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def find_c_compiler(variant: BuildVariant = BuildVariant.NATIVE) -> str:
    """Return the C compiler for ``variant`` or raise :class:`MissingDependencyError`."""
    if variant is BuildVariant.VERIFICARLO:
        found = shutil.which("verificarlo-c")
        if not found:
            raise MissingDependencyError(
                "variant='verificarlo' needs verificarlo-c on PATH (inside the harness-verificarlo "
                "image: `harness containers build verificarlo`); it was not found"
            )
        return found
    for candidate in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise MissingDependencyError(
        "building the harness kernels needs a C compiler (set $CC or install gcc); none found"
    )


def tool_dirs() -> list[str]:
    """Folders searched for build tools before ``$PATH``: the running interpreter's ``bin``
    (where ``pip install ninja`` puts ``ninja`` in a virtual environment that is not activated)
    and the ``ninja`` package's own folder."""
    dirs = [str(Path(sys.executable).parent)]
    try:
        import ninja

        dirs.append(str(ninja.BIN_DIR))
    except (ImportError, AttributeError):
        pass
    return list(dict.fromkeys(dirs))


def tool_search_path() -> str:
    """``$PATH`` with :func:`tool_dirs` in front."""
    return os.pathsep.join([*tool_dirs(), os.environ.get("PATH", os.defpath)])


@contextlib.contextmanager
def build_tools_on_path():
    """Put :func:`tool_dirs` on ``$PATH`` while a build runs (torch's extension builder looks
    tools up there), restoring it afterwards."""
    previous = os.environ.get("PATH")
    os.environ["PATH"] = tool_search_path()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = previous


def _check_cxx_toolchain() -> None:
    """Raise :class:`MissingDependencyError` naming the fix unless a C++ compiler and ninja are
    found (ninja also in the running interpreter's environment)."""
    search = tool_search_path()
    cxx = os.environ.get("CXX", "c++")
    if not shutil.which(cxx, path=search):
        raise MissingDependencyError(
            f"building the harness kernels needs a C++ compiler ({cxx!r} from $CXX); not found: "
            "install one (apt install g++) or set $CXX"
        )
    if not shutil.which("ninja", path=search):
        raise MissingDependencyError(
            "building the harness kernels needs ninja; not found on PATH or beside "
            f"{sys.executable}: run `{sys.executable} -m pip install ninja` (or apt install "
            "ninja-build)"
        )


def _c_flags(mode: KernelMode, variant: BuildVariant) -> list[str]:
    flags = ["-std=c99", "-O3", "-fPIC", "-fvisibility=hidden", "-ffp-contract=off"]
    flags.append(f"-DHARNESS_MODE_{mode.name}")
    if variant is BuildVariant.NATIVE:
        flags.append("-fopenmp")
    return flags


def _compile_c_object(mode: KernelMode, variant: BuildVariant, build_dir: Path) -> Path:
    compiler = find_c_compiler(variant)
    obj = build_dir / f"kernels_cpu_{mode.value}_{variant.value}.o"
    if obj.exists():
        return obj
    make_build_dir(build_dir)
    tmp = obj.with_suffix(f".{os.getpid()}.o")
    cmd = [compiler, *_c_flags(mode, variant), "-I", str(SOURCE_DIR), "-c"]
    cmd += [str(SOURCE_DIR / C_SOURCE), "-o", str(tmp)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise MissingDependencyError(
            f"compiling {C_SOURCE} with {compiler} failed:\n{' '.join(cmd)}\n{result.stderr[-4000:]}"
        )
    os.replace(tmp, obj)
    return obj


def extension_name(mode: KernelMode, variant: BuildVariant, with_cuda: bool) -> str:
    suffix = "" if variant is BuildVariant.NATIVE else "_vfc"
    return f"harness_kernels_{mode.value}{suffix}{'_cuda' if with_cuda else ''}"


@cache
def load_extension(mode="ieee", variant="native", verbose: bool = False) -> ModuleType:
    """Build (once) and import the kernel extension for ``mode``.

    Parameters
    ----------
    mode : {"ieee", "sr", "rr"}
        Arithmetic compiled into the kernels.
    variant : {"native"}
        Only ``native``; the Verificarlo build is the standalone library of
        :mod:`harness.kernels.vfc` (linked by ``verificarlo-c``, loaded under an explicit backend).
    verbose : bool
        Show the compiler output.

    Returns
    -------
    module
        The extension, with ``conv2d_forward``, ``conv2d_backward_input``,
        ``conv2d_backward_weight``, ``bn_forward_train``, ``bn_apply``, ``bn_backward_train``,
        ``philox_block``, ``mode_name`` and ``has_cuda``.

    Raises
    ------
    MissingDependencyError
        No C/C++ compiler or ninja, or the compilation failed.
    """
    import torch
    from torch.utils import cpp_extension

    mode = parse_mode(mode)
    variant = parse_enum(BuildVariant, variant, "variant")
    if variant is BuildVariant.VERIFICARLO:
        # a torch extension cannot host the Verificarlo build: the instrumented objects must be
        # linked by verificarlo-c, and loading them needs VFC_BACKENDS fixed for the process
        raise InputError(
            "variant='verificarlo' is a standalone C library, not a torch extension: use "
            "harness.kernels.vfc.load_library(backend=...) (build it with "
            "harness.kernels.vfc.build_library)"
        )
    _check_cxx_toolchain()
    with_cuda = torch.cuda.is_available() and cpp_extension.CUDA_HOME is not None
    name = extension_name(mode, variant, with_cuda)
    tag = f"torch{torch.__version__.replace('+', '_')}-{source_hash()}"
    build_dir = make_build_dir(cache_dir() / tag / name)
    obj = _compile_c_object(mode, variant, build_dir)
    defines = [f"-DHARNESS_MODE_{mode.name}"]
    sources = [str(SOURCE_DIR / BINDING)]
    cuda_flags = None
    if with_cuda:
        defines.append("-DHARNESS_WITH_CUDA")
        sources += [str(SOURCE_DIR / s) for s in CUDA_SOURCES]
        cuda_flags = ["-O3", "--fmad=false", *defines]
    ldflags = [str(obj)] + (["-fopenmp"] if variant is BuildVariant.NATIVE else [])
    try:
        with build_tools_on_path():
            return cpp_extension.load(
                name=name,
                sources=sources,
                extra_cflags=["-O3", *defines],
                extra_cuda_cflags=cuda_flags,
                extra_ldflags=ldflags,
                extra_include_paths=[str(SOURCE_DIR)],
                build_directory=str(build_dir),
                verbose=verbose,
                with_cuda=with_cuda,
            )
    except (RuntimeError, subprocess.CalledProcessError, OSError, ImportError) as exc:
        raise MissingDependencyError(
            f"building the harness kernel extension {name} failed: {exc}"
        ) from exc
