"""Run the validation cases through the Verificarlo build under one backend; write the samples.

One process per backend (Verificarlo fixes the backend when the library loads)::

    python -m harness.kernels.vfc_runner --inputs IN --outputs OUT --backend mca-rr@24,53 \
        --samples 32 --seed 7

reads ``IN/cases.json`` and ``IN/<case>.npz`` (:func:`harness.kernels.cases.write_inputs`) and
writes ``OUT/<case>.npz`` with one array of shape (samples, ...) per output, plus ``OUT/run.json``
(backend, ``VFC_BACKENDS``, Verificarlo version, seconds). Samples are successive calls in the
same process: Verificarlo's generator, seeded once by ``--seed``, moves on between calls.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from harness.errors import HarnessError, InputError
from harness.kernels.cases import OUTPUTS, compute_outputs, read_inputs
from harness.kernels.vfc_backends import parse_backend

RUN_FILE = "run.json"


def run(inputs: Path, outputs: Path, backend: str, samples: int, seed: int,
        library: str | None = None) -> dict:  # fmt: skip
    """Compute ``samples`` samples of every output of every case under ``backend``."""
    from harness.kernels.vfc import backend_libdir, load_library

    if samples < 1:
        raise InputError(f"samples must be >= 1, got {samples}")
    spec = parse_backend(backend, seed=seed)
    shapes, cases = read_inputs(inputs)
    start = time.perf_counter()
    kernels = load_library(spec, library)
    outputs.mkdir(parents=True, exist_ok=True)
    for case, arrays in cases:
        stacks: dict[str, list[np.ndarray]] = {name: [] for name in OUTPUTS}
        for _ in range(samples):
            for name, value in compute_outputs(kernels, arrays, shapes).items():
                stacks[name].append(value)
        np.savez(outputs / f"{case.name}.npz", **{k: np.stack(v) for k, v in stacks.items()})
    record = {
        "backend": spec.name,
        "vfc_backends": spec.vfc_backends(backend_libdir()),
        "verificarlo_version": os.environ.get("VERIFICARLO_VERSION"),
        "samples": samples,
        "seed": seed,
        "mode_name": kernels.mode_name,
        "seconds": time.perf_counter() - start,
    }
    (outputs / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.kernels.vfc_runner")
    parser.add_argument("--inputs", required=True, type=Path)
    parser.add_argument("--outputs", required=True, type=Path)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--library", default=None)
    args = parser.parse_args(argv)
    try:
        record = run(args.inputs, args.outputs, args.backend, args.samples, args.seed, args.library)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(record))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
