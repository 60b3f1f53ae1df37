"""What produced a run directory: the ``kind`` recorded in its manifest, as an enum."""

from __future__ import annotations

from enum import Enum

from harness.enums import parse_enum
from harness.errors import InputError


class RunKind(Enum):
    """The producer of a run directory (``manifest.json`` ``kind``).

    The values are the strings written in manifests; :meth:`parse` also reads the older spellings
    in :data:`ALIASES`.
    """

    COHORT = "cohort"  # harness data synth
    TRAIN = "train"  # harness train, and every ensemble member
    ENSEMBLE = "ensemble"  # harness ensemble run (members/<member>/ are train runs)
    ENSEMBLE_ANALYSIS = "ensemble-analysis"  # harness ensemble analyze (ENS/analysis/)
    BRAINAGE = "brainage"  # harness brainage
    SWEEP = "mode-sweep"  # harness sweep, and the demo's mode-sweep stage
    GRANULARITY = "granularity"  # the demo's op-level vs kernel-level stage
    INTROSPECT = "introspect"  # harness introspect
    KERNEL_BENCH = "kernel-bench"  # the demo's kernel microbenchmark stage
    REPORT = "report"  # the demo's report stage
    CONTAINER_BENCH = "container-bench"  # harness containers bench
    KERNELS_VALIDATE = "kernels-validate"  # harness kernels validate (harness vs Verificarlo)
    SEGMENT = "segment"  # harness segment (inference on a cohort or a scan, optionally perturbed)

    @classmethod
    def parse(cls, value: RunKind | str) -> RunKind:
        """The kind named by ``value``.

        Raises
        ------
        InputError
            If ``value`` names no kind.
        """
        alias = ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
        return alias or parse_enum(cls, value, "run kind")

    @classmethod
    def of_manifest(cls, manifest: dict) -> RunKind | None:
        """The kind a manifest records; None when it records none or one this harness does not
        know (a run of a foreign or newer tool: its files are not read as results)."""
        value = manifest.get("kind") if isinstance(manifest, dict) else None
        if value is None:
            return None
        try:
            return cls.parse(value)
        except InputError:
            return None


#: spellings written by earlier versions -> the kind
ALIASES: dict[str, RunKind] = {"sweep": RunKind.SWEEP}
