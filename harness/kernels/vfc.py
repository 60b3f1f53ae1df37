"""The kernels as a standalone shared library: built natively or with Verificarlo, loaded by ctypes.

The Verificarlo build follows what Verificarlo 2.4.0 needs (measured, see
``containers/verificarlo/README.md``):

* compile with ``verificarlo-c --inst-fma``: without it the ``fma`` chains of a convolution are not
  instrumented at all (only the bias add would vary);
* link with ``verificarlo-c --inst-fma -shared``: the link step adds Verificarlo's wrapper (the
  ``_floatmul``... hooks); an object compiled by ``verificarlo-c -c`` but linked by another linker
  fails to load with an undefined ``_floatmul``;
* load only with ``VFC_BACKENDS`` set: unset, the library's constructor exits the process with
  status 1. :func:`load_library` takes an explicit :class:`~harness.kernels.vfc_backends.VfcBackend`,
  sets the variable while the library loads, and refuses a second, different backend in the same
  process (the backend is fixed at load): run one process per backend
  (``python -m harness.kernels.vfc_runner``).

Command line (used by the image build)::

    python -m harness.kernels.vfc build --output /opt/harness/lib/libharness_kernels_vfc.so
    python -m harness.kernels.vfc check --backend ieee
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.enums import choices, parse_enum
from harness.errors import HarnessError, InputError, MissingDependencyError
from harness.kernels.build import (
    C_SOURCE,
    SOURCE_DIR,
    BuildVariant,
    KernelMode,
    find_c_compiler,
    parse_mode,
)
from harness.kernels.clib import KernelLibrary
from harness.kernels.vfc_backends import VfcBackend, parse_backend

#: where the image installs the Verificarlo build of the kernels
LIBRARY_ENV = "HARNESS_VFC_LIBRARY"
#: Verificarlo's install prefix inside the image (backends under lib/)
PREFIX_ENV = "VERIFICARLO_PREFIX"

_COMMON_FLAGS = ["-std=c99", "-O3", "-fPIC", "-ffp-contract=off", "-Wno-unknown-pragmas"]


@dataclass(frozen=True)
class BuildCommands:
    """The compile and link command lines of one library build."""

    compile: list[str]
    link: list[str]


def library_commands(
    output: Path,
    mode: KernelMode = KernelMode.IEEE,
    variant: BuildVariant = BuildVariant.VERIFICARLO,
    compiler: str | None = None,
    source_dir: Path = SOURCE_DIR,
) -> BuildCommands:
    """Command lines that build ``kernels_cpu.c`` into the shared library ``output``.

    Parameters
    ----------
    output : Path
        The ``.so`` to write; the object goes beside it (``.o``).
    mode : KernelMode
        harness's own arithmetic; the Verificarlo variant instruments the ieee source only.
    variant : BuildVariant
        ``VERIFICARLO``: ``verificarlo-c --inst-fma`` compiles *and* links (``-shared``), no
        OpenMP. ``NATIVE``: the system C compiler with OpenMP.
    compiler : str, optional
        Path of the compiler (found on PATH when omitted).
    """
    if variant is BuildVariant.VERIFICARLO and mode is not KernelMode.IEEE:
        raise InputError(
            f"the Verificarlo build instruments the ieee source; got mode={mode.value!r}"
        )
    cc = compiler or find_c_compiler(variant)
    obj = output.with_suffix(".o")
    if variant is BuildVariant.VERIFICARLO:
        tool = [cc, "--inst-fma"]
        cflags, ldflags = [], []
    else:
        tool = [cc]
        cflags, ldflags = ["-fopenmp"], ["-fopenmp"]
    compile_cmd = [
        *tool, *_COMMON_FLAGS, *cflags, f"-DHARNESS_MODE_{mode.name}",
        "-I", str(source_dir), "-c", str(source_dir / C_SOURCE), "-o", str(obj),
    ]  # fmt: skip
    link_cmd = [*tool, "-shared", *ldflags, str(obj), "-o", str(output), "-lm"]
    return BuildCommands(compile_cmd, link_cmd)


def build_library(
    output: str | os.PathLike,
    mode: KernelMode | str = KernelMode.IEEE,
    variant: BuildVariant | str = BuildVariant.VERIFICARLO,
    compiler: str | None = None,
) -> Path:
    """Compile and link the kernels into a shared library (see :func:`library_commands`).

    Returns
    -------
    Path
        ``output``, written atomically (a temporary name, then renamed).

    Raises
    ------
    MissingDependencyError
        The compiler is missing or a command failed (its stderr is in the message).
    """
    mode = parse_mode(mode)
    variant = _parse_variant(variant)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".build-") as tmp:
        staged = Path(tmp) / output.name
        commands = library_commands(staged, mode, variant, compiler)
        env = dict(os.environ)
        for cmd in (commands.compile, commands.link):
            result = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise MissingDependencyError(
                    f"building the kernel library failed:\n{' '.join(cmd)}\n"
                    f"{(result.stderr or result.stdout)[-4000:]}"
                )
        os.replace(staged, output)
    return output


def _parse_variant(variant) -> BuildVariant:
    return parse_enum(BuildVariant, variant, "variant")


def default_library() -> Path:
    """The Verificarlo build named by ``$HARNESS_VFC_LIBRARY`` (set in the image)."""
    value = os.environ.get(LIBRARY_ENV)
    if not value:
        raise MissingDependencyError(
            f"no Verificarlo build of the kernels: ${LIBRARY_ENV} is unset (it is set inside the "
            "harness-verificarlo image; build it with `harness containers build verificarlo`)"
        )
    path = Path(value)
    if not path.is_file():
        raise MissingDependencyError(f"${LIBRARY_ENV}={value} does not exist")
    return path


def backend_libdir() -> str | None:
    """Folder of the ``libinterflop_*.so`` backends (``$VERIFICARLO_PREFIX/lib``), if known."""
    prefix = os.environ.get(PREFIX_ENV)
    return str(Path(prefix) / "lib") if prefix else None


#: (library path, VFC_BACKENDS) of the instrumented library loaded in this process
_LOADED: dict[str, str] = {}


@contextlib.contextmanager
def _environment(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def load_library(
    backend: VfcBackend | str | None,
    path: str | os.PathLike | None = None,
    seed: int = 0,
) -> KernelLibrary:
    """Load the Verificarlo build of the kernels under ``backend``.

    Parameters
    ----------
    backend : VfcBackend or str
        Required: the Verificarlo backend (``"ieee"``, ``"mca-rr@24,53"``...). None is refused
        (Verificarlo would exit the interpreter).
    path : path-like, optional
        The shared library; ``$HARNESS_VFC_LIBRARY`` when omitted.
    seed : int
        Key of harness's own streams inside the kernels (unused by the ieee source).

    Raises
    ------
    InputError
        No backend, or a different backend was already loaded in this process.
    MissingDependencyError
        The library is missing or fails to load.
    """
    if backend is None:
        raise InputError(
            "backend is required: loading a Verificarlo-instrumented library with VFC_BACKENDS "
            "unset makes Verificarlo exit the whole process; give e.g. backend='ieee'"
        )
    backend = parse_backend(backend)
    lib = Path(path) if path is not None else default_library()
    value = backend.vfc_backends(backend_libdir())
    key = str(lib.resolve())
    if key in _LOADED and _LOADED[key] != value:
        raise InputError(
            f"{lib} is already loaded in this process with VFC_BACKENDS={_LOADED[key]!r}; the "
            f"backend is fixed at load, so {backend.name!r} needs a process of its own "
            "(python -m harness.kernels.vfc_runner)"
        )
    # Verificarlo reads the variable in the library's constructor, i.e. during dlopen
    with _environment(VFC_BACKENDS=value, VFC_BACKENDS_SILENT_LOAD="True"):
        try:
            cdll = ctypes.CDLL(str(lib), mode=ctypes.RTLD_LOCAL)
        except OSError as exc:
            raise MissingDependencyError(f"loading {lib} failed: {exc}") from exc
    _LOADED[key] = value
    return KernelLibrary(cdll, seed=seed)


def load_native_library(path: str | os.PathLike, seed: int = 0) -> KernelLibrary:
    """Load a native (non-Verificarlo) build of the kernels."""
    try:
        return KernelLibrary(ctypes.CDLL(str(path), mode=ctypes.RTLD_LOCAL), seed=seed)
    except OSError as exc:
        raise MissingDependencyError(f"loading {path} failed: {exc}") from exc


def _check(backend: str, path: str | None) -> str:
    """Run a small convolution through the library: proves it loads and computes."""
    import numpy as np

    kernels = load_library(backend, path)
    x = np.arange(2 * 3 * 5 * 5, dtype=np.float64).reshape(2, 3, 5, 5) % 7 - 3
    w = np.arange(4 * 3 * 3 * 3, dtype=np.float64).reshape(4, 3, 3, 3) % 5 - 2
    y = kernels.conv2d_forward(x, w)
    expected = np.zeros_like(y)
    for r in range(3):
        for s in range(3):
            expected += np.einsum("nchw,kc->nkhw", x[:, :, r : r + 3, s : s + 3], w[:, :, r, s])
    if not np.array_equal(y, expected):
        raise MissingDependencyError("the kernel library computed a wrong convolution")
    return f"ok: {path or default_library()} mode={kernels.mode_name} backend={backend}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.kernels.vfc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="compile and link the kernel library")
    build.add_argument("--output", required=True)
    build.add_argument("--variant", default="verificarlo", choices=choices(BuildVariant))
    build.add_argument("--mode", default="ieee", choices=choices(KernelMode))
    check = sub.add_parser("check", help="load the library under a backend and run a conv")
    check.add_argument("--backend", required=True)
    check.add_argument("--library", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(build_library(args.output, args.mode, args.variant))
        else:
            print(_check(args.backend, args.library))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = [
    "BuildCommands",
    "build_library",
    "default_library",
    "library_commands",
    "load_library",
    "load_native_library",
]
