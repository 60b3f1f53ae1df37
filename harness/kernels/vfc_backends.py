"""Verificarlo backends as values: which ``libinterflop_*.so`` and which options, as Enums.

A Verificarlo-instrumented library reads ``VFC_BACKENDS`` once, when it is loaded, and exits the
whole process (a Python interpreter included) with status 1 when the variable is unset. harness
therefore never lets it be unset: every load takes an explicit :class:`VfcBackend` and writes the
variable from it (:meth:`VfcBackend.vfc_backends`). The backend is fixed for the life of the
process, so each backend runs in a process of its own.

Spelling at the boundary (CLI, runner): ``ieee``, ``mca-rr``, ``mca-pb``, ``mca-mca``,
``mca_int-rr`` (the stochastic-rounding stand-in), optionally followed by ``@T32,T64`` virtual
precisions, e.g. ``mca-rr@24,53`` (the defaults, t = p).

Verificarlo's ``--precision-binary32=t`` counts the implicit bit, as harness's ``t`` does: the mca
noise is ``2^(e - (t - 1)) xi`` with ``e`` the IEEE exponent (``x = 1.m 2^e``), i.e.
``2^(e' - t) xi`` with harness's ``frexp`` exponent ``e' = e + 1``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import PurePosixPath

from harness.errors import InputError

P_BINARY32 = 24
P_BINARY64 = 53


class Library(Enum):
    """The Verificarlo backend library."""

    IEEE = "ieee"
    MCA = "mca"
    MCA_INT = "mca_int"

    @property
    def filename(self) -> str:
        return f"libinterflop_{self.value}.so"


class McaMode(Enum):
    """Where the mca backends add noise: result (rr), operands (pb), both (mca)."""

    RR = "rr"
    PB = "pb"
    MCA = "mca"


@dataclass(frozen=True)
class VfcBackend:
    """One Verificarlo backend with its options.

    Parameters
    ----------
    library : Library
    mode : McaMode or None
        Required for the mca backends, None for ieee.
    precision_binary32, precision_binary64 : int
        Virtual precisions t (1..24 and 1..53), implicit bit included.
    seed : int or None
        Fixes Verificarlo's random generator (reproducible samples); None draws one per process.
    """

    library: Library
    mode: McaMode | None = None
    precision_binary32: int = P_BINARY32
    precision_binary64: int = P_BINARY64
    seed: int | None = None

    def __post_init__(self):
        if self.library is Library.IEEE and self.mode is not None:
            raise InputError(f"backend ieee takes no mode, got mode={self.mode.value!r}")
        if self.library is not Library.IEEE and self.mode is None:
            raise InputError(
                f"backend {self.library.value} needs a mode, one of {[m.value for m in McaMode]}"
            )
        for name, value, top in (
            ("precision_binary32", self.precision_binary32, P_BINARY32),
            ("precision_binary64", self.precision_binary64, P_BINARY64),
        ):
            if not isinstance(value, int) or not 1 <= value <= top:
                raise InputError(f"{name} must be an int in [1, {top}], got {value!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise InputError(f"seed must be a non-negative int or None, got {self.seed!r}")

    @property
    def name(self) -> str:
        """The boundary spelling, e.g. ``mca-rr@24,53`` (precisions shown for mca backends)."""
        if self.library is Library.IEEE:
            return "ieee"
        return f"{self.library.value}-{self.mode.value}@{self.precision_binary32},{self.precision_binary64}"

    @property
    def engine(self) -> str:
        """Engine name in validation tables and run folders: ``vfc-mca-rr``, ``vfc-ieee``."""
        return "vfc-" + self.name.split("@")[0]

    def with_seed(self, seed: int | None) -> VfcBackend:
        return replace(self, seed=seed)

    def options(self) -> list[str]:
        """Command-line options of the backend library."""
        if self.library is Library.IEEE:
            return []
        opts = [
            f"--mode={self.mode.value}",
            f"--precision-binary32={self.precision_binary32}",
            f"--precision-binary64={self.precision_binary64}",
        ]
        if self.seed is not None:
            opts.append(f"--seed={self.seed}")
        return opts

    def vfc_backends(self, libdir: str | None = None) -> str:
        """The value of ``VFC_BACKENDS`` for this backend (library path under ``libdir``)."""
        lib = self.library.filename
        if libdir:
            lib = str(PurePosixPath(libdir) / lib)
        return " ".join([lib, *self.options()])


def parse_backend(text: str | VfcBackend, seed: int | None = None) -> VfcBackend:
    """Parse ``ieee`` / ``mca-rr`` / ``mca_int-rr@24,53`` ... into a :class:`VfcBackend`."""
    if isinstance(text, VfcBackend):
        return text if seed is None else text.with_seed(seed)
    if not isinstance(text, str) or not text.strip():
        raise InputError(
            f"backend must be a non-empty string such as 'ieee' or 'mca-rr@24,53', got {text!r}"
        )
    spec, _, precisions = text.strip().lower().partition("@")
    name, _, mode = spec.partition("-")
    try:
        library = Library(name)
    except ValueError:
        raise InputError(
            f"backend {text!r}: unknown Verificarlo backend {name!r}; "
            f"choose one of {[lib.value for lib in Library]}"
        ) from None
    try:
        mca_mode = McaMode(mode) if mode else None
    except ValueError:
        raise InputError(
            f"backend {text!r}: unknown mode {mode!r}; choose one of {[m.value for m in McaMode]}"
        ) from None
    t32, t64 = P_BINARY32, P_BINARY64
    if precisions:
        parts = precisions.split(",")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise InputError(
                f"backend {text!r}: precisions after '@' must be integers 'T32,T64', got {precisions!r}"
            ) from None
        if len(values) != 2:
            raise InputError(f"backend {text!r}: give both precisions as '@T32,T64'")
        t32, t64 = values
    return VfcBackend(library, mca_mode, t32, t64, seed)


def backend_from_vfc_backends(value: str | None) -> VfcBackend:
    """Read a ``VFC_BACKENDS`` value (one backend) back into a :class:`VfcBackend`.

    Raises
    ------
    InputError
        The value is unset or empty (Verificarlo would exit the process), names several backends,
        or a library or option harness does not model.
    """
    if value is None or not value.strip():
        raise InputError(
            "VFC_BACKENDS is unset: an instrumented library loaded without it makes Verificarlo "
            "exit the whole process; give a backend (e.g. VFC_BACKENDS='libinterflop_ieee.so')"
        )
    if ";" in value.strip().rstrip(";"):
        raise InputError(f"VFC_BACKENDS must name one backend, got {value!r}")
    words = shlex.split(value.strip().rstrip(";"))
    lib_name = PurePosixPath(words[0]).name
    by_file = {lib.filename: lib for lib in Library}
    if lib_name not in by_file:
        raise InputError(
            f"VFC_BACKENDS={value!r}: backend {lib_name!r} is not one of {sorted(by_file)}"
        )
    options: dict[str, str] = {}
    it = iter(words[1:])
    for word in it:
        key, eq, val = word.partition("=")
        if not eq:
            val = next(it, "")
        options[key.lstrip("-")] = val
    known = {"mode", "precision-binary32", "precision-binary64", "seed"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"VFC_BACKENDS={value!r}: options {unknown} are not modelled by harness")
    library = by_file[lib_name]
    mode = options.get("mode")
    if library is not Library.IEEE and mode is None:
        mode = McaMode.MCA.value  # Verificarlo's default mode
    try:
        return VfcBackend(
            library,
            McaMode(mode) if mode else None,
            int(options.get("precision-binary32", P_BINARY32)),
            int(options.get("precision-binary64", P_BINARY64)),
            int(options["seed"]) if "seed" in options else None,
        )
    except ValueError as exc:
        raise InputError(f"VFC_BACKENDS={value!r}: {exc}") from None
